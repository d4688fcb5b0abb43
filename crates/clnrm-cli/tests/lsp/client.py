"""Drives `clnrm lsp` with pygls's language client (from PyPI) over stdio.

Usage: client.py CLNRM_BINARY PROJECT_DIR

Writes a project into PROJECT_DIR (a plain file, a template with a partial, the
project's config with [vars]), then checks every capability of the server on both
kinds of file: diagnostics on open and change (positions, codes, template lines,
Tera errors), quick fixes that make the file valid, completion of keys, headers and
values, hover, go to definition, that a change re-checks only the file and the
templates that include it, that a burst of changes ends on the newest version, and
a clean shutdown. Prints "ok: <check>" for each; an assertion error exits 1.
"""

import asyncio
import os
import sys
import time

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient

BIN, ROOT = sys.argv[1], sys.argv[2]

# The project's files, shared with the Neovim test (tests/lsp/nvim.lua).
PROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "project")


def fixture(rel):
    with open(os.path.join(PROJECT, rel)) as f:
        return f.read()


PLAIN = fixture("tests/plain.clnrm.toml")
TEMPLATE = fixture("tests/tmpl.clnrm.toml.tera")
PARTIAL = fixture("tests/partials/svc.toml.tera")
CONFIG = fixture(".clnrm/config.toml")


def write(rel, text):
    path = os.path.join(ROOT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return "file://" + path


def ok(what):
    print("ok:", what, flush=True)


def pos_of(text, needle, delta=0):
    """The LSP position of the first `needle` in `text` (plus `delta` characters)."""
    i = text.index(needle) + delta
    line = text.count("\n", 0, i)
    col = i - (text.rfind("\n", 0, i) + 1)
    return t.Position(line=line, character=col)


def apply(text, edit):
    lines = text.split("\n")

    def off(p):
        return sum(len(l) + 1 for l in lines[: p.line]) + p.character

    s, e = off(edit.range.start), off(edit.range.end)
    return text[:s] + edit.new_text + text[e:]


async def main():
    write(".clnrm/config.toml", CONFIG)
    plain_uri = write("tests/plain.clnrm.toml", PLAIN)
    tmpl_uri = write("tests/tmpl.clnrm.toml.tera", TEMPLATE)
    partial_uri = write("tests/partials/svc.toml.tera", PARTIAL)

    client = LanguageClient("clnrm-lsp-test", "1")
    published = {}  # uri -> list of (version, diagnostics)
    arrived = asyncio.Event()

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params):
        published.setdefault(params.uri, []).append((params.version, params.diagnostics))
        arrived.set()

    async def wait_for(uri, count, what):
        deadline = time.monotonic() + 20
        while len(published.get(uri, [])) < count:
            arrived.clear()
            left = deadline - time.monotonic()
            assert left > 0, f"{what}: no diagnostics for {uri} ({published.get(uri)})"
            try:
                await asyncio.wait_for(arrived.wait(), left)
            except asyncio.TimeoutError:
                pass
        return published[uri][count - 1]

    async def wait_until(uri, after, pred, what):
        """The first diagnostics of `uri` published after the `after`-th that `pred` holds of."""
        n = after
        while True:
            version, diags = await wait_for(uri, n + 1, what)
            if pred(diags):
                return version, diags
            n += 1

    await client.start_io(BIN, "lsp", "--stdio", cwd=ROOT)
    init = await client.initialize_async(
        t.InitializeParams(
            capabilities=t.ClientCapabilities(),
            root_uri="file://" + ROOT,
            workspace_folders=[t.WorkspaceFolder(uri="file://" + ROOT, name="p")],
        )
    )
    caps = init.capabilities
    assert caps.completion_provider and caps.hover_provider and caps.definition_provider
    assert caps.code_action_provider
    client.initialized(t.InitializedParams())
    ok("initialize")

    def open_doc(uri, text, lang="toml"):
        client.text_document_did_open(
            t.DidOpenTextDocumentParams(
                text_document=t.TextDocumentItem(uri=uri, language_id=lang, version=1, text=text)
            )
        )

    def change(uri, version, text):
        client.text_document_did_change(
            t.DidChangeTextDocumentParams(
                text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    # Diagnostics of a plain file, on open.
    open_doc(plain_uri, PLAIN)
    version, diags = await wait_for(plain_uri, 1, "open plain")
    assert version == 1, version
    by_code = {d.code: d for d in diags}
    assert set(by_code) == {"W0001", "E0102", "E0104"}, [(d.code, d.message) for d in diags]
    unknown = by_code["W0001"]
    assert unknown.severity == t.DiagnosticSeverity.Warning
    assert unknown.range.start == pos_of(PLAIN, "imgae"), unknown.range
    assert unknown.range.end == pos_of(PLAIN, "imgae", 5), unknown.range
    assert "did you mean `image`" in unknown.message, unknown.message
    undefined = by_code["E0102"]
    assert undefined.severity == t.DiagnosticSeverity.Error
    assert undefined.range.start == pos_of(PLAIN, '"dbb"'), undefined.range
    assert 'undefined service "dbb"' in undefined.message, undefined.message
    ok("diagnostics of a plain file, positioned")

    # Quick fixes: each did-you-mean applied makes the file valid.
    text = PLAIN
    for code in ["E0104", "E0102", "W0001"]:
        d = by_code[code]
        actions = await client.text_document_code_action_async(
            t.CodeActionParams(
                text_document=t.TextDocumentIdentifier(uri=plain_uri),
                range=d.range,
                context=t.CodeActionContext(diagnostics=[d]),
            )
        )
        assert actions and len(actions) == 1, (code, actions)
        action = actions[0]
        assert action.kind == t.CodeActionKind.QuickFix
        edits = action.edit.changes[plain_uri]
        text = apply(text, edits[0])
    assert 'kind = "server"' in text and 'service = "db"' in text, text
    # The unknown key became a second `image`: the duplicate is now an error, so the
    # key is dropped instead, as a user would after the fix.
    text = text.replace('image = "clnrm/busybox:latest"\nimage', "image", 1)
    change(plain_uri, 2, text)
    version, diags = await wait_for(plain_uri, 2, "fixed plain")
    assert version == 2 and not diags, (version, [(d.code, d.message) for d in diags])
    ok("quick fixes from did-you-mean; diagnostics after a change")

    # Completion: keys of the table at the position, headers, values, service ids.
    async def complete(text_, needle, delta=0):
        uri = write("tests/scratch.clnrm.toml", text_)
        open_doc(uri, text_)
        res = await client.text_document_completion_async(
            t.CompletionParams(
                text_document=t.TextDocumentIdentifier(uri=uri),
                position=pos_of(text_, needle, delta),
            )
        )
        client.text_document_did_close(
            t.DidCloseTextDocumentParams(text_document=t.TextDocumentIdentifier(uri=uri))
        )
        items = res.items if hasattr(res, "items") else res
        return {i.label: i for i in items}

    keys = await complete(text + "\n[[scenario]]\nname = \"n\"\nti\n", "ti\n", 2)
    assert "timeout_ms" in keys and "steps" in keys and "name" not in keys, list(keys)
    assert keys["timeout_ms"].kind == t.CompletionItemKind.Property
    assert keys["timeout_ms"].documentation, keys["timeout_ms"]
    heads = await complete(text + "\n[[scen\n", "[[scen", 6)
    assert "[[scenario.steps]]" in heads and "[[service.db.setup]]" in heads, list(heads)
    kinds = await complete(text + '\n[[expect.span]]\nname = "a"\nkind = ""\n', 'kind = ""', 8)
    assert {"server", "client", "internal"} <= set(kinds), list(kinds)
    assert kinds["server"].text_edit.new_text == '"server"'
    services = await complete(text + '\n[[scenario]]\nname = "z"\nservice = ""\n', 'service = ""\n', 11)
    assert set(services) == {"db", "app"}, list(services)
    # The keys of a `grpc` call, in its inline table.
    call = 'grpc = { target = "db:50051", '
    grpc_keys = await complete(
        text + '\n[[scenario]]\nname = "g"\n\n[[scenario.steps]]\nname = "c"\n' + call + " }\n",
        call,
        len(call),
    )
    # (Keys written in the same inline table are offered again: a known gap.)
    assert {"method", "proto", "json", "metadata", "timeout_ms"} <= set(grpc_keys), list(grpc_keys)
    assert "url" not in grpc_keys and "command" not in grpc_keys, list(grpc_keys)
    ok("completion of keys, headers, values and service ids")

    # Hover: the schema's description.
    hover = await client.text_document_hover_async(
        t.HoverParams(
            text_document=t.TextDocumentIdentifier(uri=plain_uri),
            position=pos_of(text, "interval_ms", 3),
        )
    )
    assert hover and "Time between probes" in hover.contents.value, hover
    assert hover.range.start == pos_of(text, "interval_ms"), hover.range
    ok("hover")

    # Go to definition: from a scenario's service and from depends_on.
    for needle in ['service = "db"', "depends_on = { db"]:
        loc = await client.text_document_definition_async(
            t.DefinitionParams(
                text_document=t.TextDocumentIdentifier(uri=plain_uri),
                position=pos_of(text, needle, len(needle) - 1),
            )
        )
        assert loc is not None, needle
        loc = loc[0] if isinstance(loc, list) else loc
        assert loc.uri == plain_uri
        assert loc.range.start == pos_of(text, "[service.db]", len("[service.")), (needle, loc)
    ok("go to definition")

    # A template: rendered with the project's [vars] (no undefined svc_image), its
    # problems in literal text shown on the template's own lines, with the rendered
    # position in the message.
    open_doc(tmpl_uri, TEMPLATE)
    version, diags = await wait_for(tmpl_uri, 1, "open template")
    by_code = {d.code: d for d in diags}
    assert set(by_code) == {"E0103", "W0001"}, [(d.code, d.message) for d in diags]
    d = by_code["E0103"]
    assert d.range.start == pos_of(TEMPLATE, '"zero"'), d.range
    assert "(rendered line " in d.message, d.message
    typo = by_code["W0001"]
    assert typo.range.start == pos_of(TEMPLATE, "tiemout_ms"), typo.range
    ok("template diagnostics on template lines, with the project's vars")

    # The template's quick fix, completion, hover and definition.
    actions = await client.text_document_code_action_async(
        t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=tmpl_uri),
            range=typo.range,
            context=t.CodeActionContext(diagnostics=[typo]),
        )
    )
    assert actions and actions[0].edit.changes[tmpl_uri][0].new_text == "timeout_ms", actions
    fixed_template = apply(TEMPLATE, actions[0].edit.changes[tmpl_uri][0])
    assert "timeout_ms = 100" in fixed_template
    res = await client.text_document_completion_async(
        t.CompletionParams(
            text_document=t.TextDocumentIdentifier(uri=tmpl_uri),
            position=pos_of(TEMPLATE, 'service = "web"', len('service = "')),
        )
    )
    items = res.items if hasattr(res, "items") else res
    assert "web" in [i.label for i in items], [i.label for i in items]
    hover = await client.text_document_hover_async(
        t.HoverParams(
            text_document=t.TextDocumentIdentifier(uri=tmpl_uri),
            position=pos_of(TEMPLATE, "expected_exit_code", 2),
        )
    )
    assert hover and "exit code" in hover.contents.value.lower(), hover
    loc = await client.text_document_definition_async(
        t.DefinitionParams(
            text_document=t.TextDocumentIdentifier(uri=tmpl_uri),
            position=pos_of(TEMPLATE, 'service = "web"', len('service = "w')),
        )
    )
    loc = loc[0] if isinstance(loc, list) else loc
    assert loc is not None and loc.uri == partial_uri, loc
    assert loc.range.start == pos_of(PARTIAL, "web"), loc.range
    ok("quick fix, completion, hover and definition in a template (into its partial)")

    # A Tera error keeps its position in the template.
    broken = TEMPLATE.replace('name = "tmpl"', 'name = "{{ nope }}"')
    change(tmpl_uri, 2, broken)
    version, diags = await wait_for(tmpl_uri, 2, "tera error")
    assert version == 2 and len(diags) == 1, [(d.code, d.message) for d in diags]
    assert "nope" in diags[0].message, diags[0].message
    assert diags[0].range.start.line == pos_of(broken, "{{ nope }}").line, diags[0].range
    change(tmpl_uri, 3, fixed_template.replace('"zero"', "0"))
    version, diags = await wait_for(tmpl_uri, 3, "template fixed")
    assert version == 3 and not diags, [(d.code, d.message) for d in diags]
    ok("tera errors in the template; a fixed template is clean")

    # Incremental: a change to the partial (unsaved) re-checks the template that
    # includes it, and not the plain file.
    plain_count = len(published[plain_uri])
    tmpl_count = len(published[tmpl_uri])
    open_doc(partial_uri, PARTIAL, "jinja")
    change(partial_uri, 2, PARTIAL + "ports = [99999]\n")
    version, diags = await wait_until(
        tmpl_uri, tmpl_count, lambda ds: len(ds) > 0, "dependent re-checked"
    )
    assert [d.code for d in diags] == ["E0117"], [(d.code, d.message) for d in diags]
    # The line is the partial's: shown on the include tag, naming the partial's line.
    d = diags[0]
    assert "in tests/partials/svc.toml.tera:3" in d.message, d.message
    assert "ports = [99999]" in d.message, d.message
    assert d.range.start == pos_of(TEMPLATE, "{% include"), d.range
    await asyncio.sleep(0.3)
    assert len(published[plain_uri]) == plain_count, "the plain file was re-checked"
    assert partial_uri not in published or all(not ds for _, ds in published[partial_uri])
    change(partial_uri, 3, PARTIAL)
    count = len(published[tmpl_uri])
    version, diags = await wait_for(tmpl_uri, count + 1, "dependent clean again")
    assert not diags, [(d.code, d.message) for d in diags]
    ok("a change re-checks the file and the templates that include it only")

    # A burst of changes: the last published diagnostics are of the newest version.
    base = len(published[plain_uri])
    for v in range(10, 40):
        change(plain_uri, v, text.replace('name = "s"', f'name = "s{v}"'))
    change(plain_uri, 40, text.replace('service = "db"', 'service = "nope"', 1))
    deadline = time.monotonic() + 20
    while True:
        last = published[plain_uri][-1]
        if last[0] == 40:
            break
        assert time.monotonic() < deadline, published[plain_uri][base:]
        await asyncio.sleep(0.02)
    assert [d.code for d in last[1]] == ["E0102"], last
    checks = len(published[plain_uri]) - base
    print(f"burst: 31 changes, {checks} checks published", flush=True)
    ok("a burst of changes ends on the newest version")

    # Closing a document clears its diagnostics.
    client.text_document_did_close(
        t.DidCloseTextDocumentParams(text_document=t.TextDocumentIdentifier(uri=plain_uri))
    )
    count = len(published[plain_uri])
    version, diags = await wait_for(plain_uri, count + 1, "close")
    assert not diags, diags
    ok("close clears")

    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    ok("shutdown")


asyncio.run(main())
