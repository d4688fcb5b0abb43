-- clnrm's language server for *.clnrm.toml and *.clnrm.toml.tera, with Neovim's
-- built-in client (0.7 or later), `clnrm` on the PATH. The project root is the
-- directory holding .clnrm/ (its [vars] render templates), else the current one.
vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile" }, {
  pattern = { "*.clnrm.toml", "*.clnrm.toml.tera" },
  callback = function(args)
    local dir = vim.fn.finddir(".clnrm", vim.fn.fnamemodify(args.file, ":p:h") .. ";")
    local root = dir ~= "" and vim.fn.fnamemodify(dir, ":p:h:h") or vim.fn.getcwd()
    local config = { name = "clnrm", cmd = { "clnrm", "lsp" }, root_dir = root }
    if vim.lsp.start then -- 0.8 and later: one client per root, reused
      vim.lsp.start(config, { bufnr = args.buf })
    else
      _G.clnrm_lsp = _G.clnrm_lsp or vim.lsp.start_client(config)
      vim.lsp.buf_attach_client(args.buf, _G.clnrm_lsp)
    end
  end,
})
