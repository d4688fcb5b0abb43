-- clnrm's language server for *.clnrm.toml and *.clnrm.toml.tera, with Neovim's
-- built-in client (0.7 or later), `clnrm` on the PATH: one server per project root
-- (the directory holding .clnrm/, whose [vars] render templates; else the current
-- one), started again if it stopped.
vim.filetype.add({ pattern = { [".*%.clnrm%.toml%.tera"] = "toml" } })
vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
  pattern = { "*.clnrm.toml", "*.clnrm.toml.tera" },
  callback = function(args)
    local dir = vim.fn.finddir(".clnrm", vim.fn.fnamemodify(args.file, ":p:h") .. ";")
    local root = dir ~= "" and vim.fn.fnamemodify(dir, ":p:h:h") or vim.fn.getcwd()
    local config = { name = "clnrm", cmd = { "clnrm", "lsp" }, root_dir = root }
    if vim.lsp.start then -- 0.8 and later: one client per root, reused
      vim.lsp.start(config, { bufnr = args.buf })
      return
    end
    _G.clnrm_lsp = _G.clnrm_lsp or {}
    local id = _G.clnrm_lsp[root]
    local client = id and vim.lsp.get_client_by_id(id)
    if not client or client.is_stopped() then
      id = vim.lsp.start_client(config)
      _G.clnrm_lsp[root] = id
    end
    if not id then
      vim.notify("clnrm lsp did not start: is clnrm on the PATH?", vim.log.levels.ERROR)
      return
    end
    vim.lsp.buf_attach_client(args.buf, id)
  end,
})
