-- Drives `clnrm lsp` from Neovim's built-in LSP client, headless, as a user's Neovim
-- does: started by the configuration README shows (docs/editors/neovim.lua, given as
-- `-u`), on a plain file and on a template with a partial that the test wrote into
-- the current directory. Diagnostics are read from Neovim's own diagnostics, a
-- did-you-mean quick fix is chosen in `vim.lsp.buf.code_action()` and applied by
-- Neovim to the buffer, definition jumps the cursor through Neovim's handler; hover
-- and completion go through the client's requests. Prints "ok: <check>" for each;
-- any failure is written to stderr and exits 1.

local function fail(msg)
  io.stderr:write("FAIL: " .. msg .. "\n")
  vim.cmd("cquit 1")
end

local function ok(what)
  io.stdout:write("ok: " .. what .. "\n")
  io.stdout:flush()
end

local function check(cond, msg)
  if not cond then
    fail(msg)
  end
end

-- Waits for `pred` (at most 20 s), letting Neovim's event loop run.
local function wait(what, pred)
  check(vim.wait(20000, pred, 20), "timed out waiting for " .. what)
end

-- The 0-based (line, column) of the first `needle` in the current buffer.
local function find(needle)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do
    local col = line:find(needle, 1, true)
    if col then
      return i - 1, col - 1
    end
  end
  fail("no " .. needle .. " in the buffer")
end

local function cursor_at(needle, delta)
  local line, col = find(needle)
  vim.api.nvim_win_set_cursor(0, { line + 1, col + (delta or 0) })
end

-- The clients attached to the current buffer (`get_clients` from 0.10 on).
local function clients()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = 0 })
  end
  return vim.lsp.buf_get_clients(0)
end

local function code_of(d)
  return d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
end

local function diagnostics()
  local by = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    by[code_of(d) or "?"] = d
  end
  return by
end

-- One request through the client; its result.
local function request(method)
  local params = vim.lsp.util.make_position_params(0, "utf-16")
  local answers = vim.lsp.buf_request_sync(0, method, params, 10000)
  check(answers, method .. ": no answer")
  for _, a in pairs(answers) do
    local err = a.error or a.err
    check(not err, method .. ": " .. vim.inspect(err))
    return a.result
  end
end

-- Chooses the first code action Neovim offers, as a user picking it would.
vim.ui.select = function(items, _, on_choice)
  check(#items >= 1, "no code action offered")
  on_choice(items[1], 1)
end

local function find_line(needle)
  for _, line in ipairs(vim.api.nvim_buf_get_lines(0, 0, -1, false)) do
    if line:find(needle, 1, true) then
      return line
    end
  end
  return nil
end

local function quick_fix(needle, expect)
  cursor_at(needle)
  vim.lsp.buf.code_action()
  wait("the quick fix at " .. needle, function()
    return find_line(expect) ~= nil
  end)
end

-- Any error (one that `check` did not catch too) fails the run at once.
local function checks()
  -- A plain file.
  vim.cmd("edit tests/plain.clnrm.toml")
  wait("the client to attach", function()
    return next(clients()) ~= nil
  end)
  ok("the configuration started the server on the file")
  wait("diagnostics of the plain file", function()
    local by = diagnostics()
    return by.W0001 and by.E0102 and by.E0104
  end)
  local by = diagnostics()
  local line, col = find("imgae")
  check(by.W0001.lnum == line and by.W0001.col == col, "W0001 at " .. vim.inspect(by.W0001))
  check(by.W0001.end_col == col + 5, "W0001 ends at " .. vim.inspect(by.W0001))
  check(by.W0001.message:find("did you mean `image`", 1, true), by.W0001.message)
  check(by.W0001.severity == vim.diagnostic.severity.WARN, "W0001 is a warning")
  line, col = find('"dbb"')
  check(by.E0102.lnum == line and by.E0102.col == col, "E0102 at " .. vim.inspect(by.E0102))
  check(by.E0102.severity == vim.diagnostic.severity.ERROR, "E0102 is an error")
  ok("diagnostics at their positions, with codes and severities")

  quick_fix('"servr"', 'kind = "server"')
  quick_fix('"dbb"', 'service = "db"')
  ok("did-you-mean quick fixes chosen in code_action and applied to the buffer")

  -- Neovim sends the edited text; the diagnostics follow it.
  wait("the fixed values' diagnostics to go", function()
    local now = diagnostics()
    return now.E0104 == nil and now.E0102 == nil and now.W0001 ~= nil
  end)
  ok("diagnostics follow the edited buffer")

  cursor_at("interval_ms", 3)
  local hover = request("textDocument/hover")
  check(hover and hover.contents and (hover.contents.value or ""):find("Time between probes", 1, true),
    "hover: " .. vim.inspect(hover))
  ok("hover")

  -- Completion of a key, on a new line of the file's last table ([[scenario.expect.span]],
  -- which has `name` and `kind` already).
  vim.api.nvim_buf_set_lines(0, -1, -1, false, { "pa" })
  vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(0), 2 })
  -- Asked again until the server has the new line (Neovim sends changes debounced).
  local labels = {}
  for _ = 1, 50 do
    labels = {}
    local res = request("textDocument/completion")
    for _, item in ipairs(res and (res.items or res) or {}) do
      labels[item.label] = item
    end
    if labels.parent and labels.attrs and not labels.name and not labels.kind then
      break
    end
    vim.wait(200)
  end
  check(labels.parent and labels.attrs and not labels.name and not labels.kind,
    "completion: " .. vim.inspect(vim.tbl_keys(labels)))
  ok("completion of a key")
  vim.api.nvim_buf_set_lines(0, -2, -1, false, {})

  -- Go to definition, through Neovim's handler: the cursor jumps.
  cursor_at("depends_on = { db", #"depends_on = { d")
  vim.lsp.buf.definition()
  local target = find("[service.db]")
  wait("the jump to [service.db]", function()
    return vim.api.nvim_win_get_cursor(0)[1] == target + 1
  end)
  ok("go to definition")

  -- A template with a partial: diagnostics on the template's own lines, its quick fix,
  -- and definition into the partial.
  vim.cmd("edit tests/tmpl.clnrm.toml.tera")
  wait("diagnostics of the template", function()
    local t = diagnostics()
    return t.W0001 and t.E0103
  end)
  local t = diagnostics()
  line, col = find("tiemout_ms")
  check(t.W0001.lnum == line and t.W0001.col == col, "template W0001 at " .. vim.inspect(t.W0001))
  check(t.E0103.message:find("(rendered line ", 1, true), t.E0103.message)
  quick_fix("tiemout_ms", "timeout_ms = 100")
  cursor_at('service = "web"', #'service = "w')
  vim.lsp.buf.definition()
  wait("the jump into the partial", function()
    return vim.api.nvim_buf_get_name(0):find("partials/svc.toml.tera", 1, true) ~= nil
  end)
  check(vim.api.nvim_win_get_cursor(0)[1] == 1, "the partial's [service.web] line")
  ok("a template: diagnostics on its lines, a quick fix, definition into its partial")
end

local done, err = xpcall(checks, debug.traceback)
if not done then
  fail(tostring(err))
end
vim.cmd("qall!")
