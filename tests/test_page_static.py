"""Check the page's static files by reading them (the browser tests live elsewhere)."""

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
VENDOR = STATIC / "vendor"
INDEX = ROOT / "templates" / "index.html"
# The page's own ES modules (not the vendored builds).
MODULES = sorted(STATIC.glob("*.js"))


def vendor_rows():
    """Return the rows of the static/vendor/README.md table, keyed by header."""
    lines = [
        line.strip()
        for line in (VENDOR / "README.md").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("|")
    ]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def test_vendor_table_lists_the_four_libraries():
    names = {row["file"] for row in vendor_rows()}
    assert names == {
        "socket.io.esm.min.js",
        "marked.esm.js",
        "purify.es.mjs",
        "highlight.min.js",
    }


@pytest.mark.parametrize("row", vendor_rows(), ids=lambda row: row["file"])
def test_vendored_file_is_present_pinned_unmodified_and_licensed(row):
    path = VENDOR / row["file"]
    assert path.is_file()
    assert re.fullmatch(r"\d+\.\d+\.\d+", row["version"])
    assert f"@{row['version']} " in row["source package"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
    assert row["version"] in path.read_text(encoding="utf-8")[:600]
    licence = VENDOR / row["licence file"]
    assert licence.is_file()
    assert licence.stat().st_size > 500
    assert row["licence"]


def test_socketio_client_speaks_protocol_v5():
    row = next(r for r in vendor_rows() if r["file"] == "socket.io.esm.min.js")
    # python-socketio 5.x serves Socket.IO protocol v5: socket.io-client 4.x.
    assert row["version"].startswith("4.")


def test_index_references_only_local_assets():
    html = INDEX.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html)
    assert not re.search(r"https?://", html)
    for name in ("main.js", "app.css"):
        assert name in html


def test_index_has_bootstrap_json_log_and_language():
    html = INDEX.read_text(encoding="utf-8")
    assert '<script type="application/json" id="bootstrap">' in html
    assert "|tojson" in html
    assert 'role="log"' in html
    assert '<html lang="en">' in html
    assert '<script type="module"' in html


def test_index_renders_through_jinja_with_safe_bootstrap():
    flask = pytest.importorskip("flask")
    app = flask.Flask(
        __name__, template_folder=str(INDEX.parent), static_folder=str(STATIC)
    )
    with app.test_request_context("/"):
        page = flask.render_template(
            "index.html",
            assistant_name="</script><b>Bot</b>",
            backend="demo",
            model="demo-1",
            is_demo=True,
            max_message_chars=4000,
            stream_default=True,
        )
    bootstrap = re.search(r'id="bootstrap">(.*?)</script>', page, re.S).group(1)
    assert "<" not in bootstrap
    assert '"max_message_chars": 4000' in bootstrap
    assert "<b>Bot</b>" not in page
    assert "Offline demo model" in page


def test_the_modules_import_each_other_and_the_vendored_builds():
    imported = set()
    for path in MODULES:
        source = path.read_text(encoding="utf-8")
        imported |= set(re.findall(r"^import [^;]* from '([^']+)';$", source, re.M))
    names = {path.name for path in MODULES}
    # Relative to the module, so the page works under a proxy's sub-path too.
    assert all(spec.startswith("./") for spec in imported), imported
    vendored = {f"./vendor/{row['file']}" for row in vendor_rows()}
    assert vendored <= imported
    assert {spec[2:] for spec in imported - vendored} | {"main.js"} == names


def test_index_preloads_every_module_main_imports():
    preloaded = set(
        re.findall(r'"([\w./-]+\.m?js)"', INDEX.read_text(encoding="utf-8"))
    )
    modules = {path.name for path in MODULES} - {"main.js"}
    vendored = {f"vendor/{row['file']}" for row in vendor_rows()}
    assert preloaded == modules | vendored


def test_modules_assign_inner_html_only_from_dompurify():
    lines = [
        line
        for path in MODULES
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    html_sink = re.compile(r"\.(inner|outer)HTML\s*\+?=")
    assignments = [line for line in lines if html_sink.search(line)]
    assert assignments, "the markdown renderer should set innerHTML once"
    for line in assignments:
        assert re.search(r"\.innerHTML\s*=\s*DOMPurify\.sanitize\(", line), line
    source = "\n".join(lines)
    assert "insertAdjacentHTML" not in source
    assert "document.write" not in source


def test_modules_have_no_remote_urls():
    for path in MODULES:
        assert not re.search(r"https?://", path.read_text(encoding="utf-8")), path


def test_modules_address_the_server_relative_to_the_page():
    source = "\n".join(path.read_text(encoding="utf-8") for path in MODULES)
    # A leading slash would skip a proxy's sub-path (https://host/chat/).
    assert not re.search(r"""fetch\(\s*[`'"]/""", source)
    assert "fetch('stream'" in source
    assert "new URL('socket.io', document.baseURI).pathname" in source


def test_modules_set_no_inline_styles():
    # The CSP's style-src 'self' refuses style attributes: the page's look is app.css's
    # classes (highlight.js's too), never a style set from a script.
    source = "\n".join(path.read_text(encoding="utf-8") for path in MODULES)
    assert not re.search(r"\.style\b|setAttribute\(\s*'style'|cssText", source)


def test_every_element_the_modules_name_is_in_the_page():
    html = INDEX.read_text(encoding="utf-8")
    page = (STATIC / "page.js").read_text(encoding="utf-8")
    listed = re.search(r"Object\.fromEntries\(\s*\[(.*?)\]", page, re.S).group(1)
    ids = re.findall(r"'([\w-]+)'", listed)
    assert len(ids) > 40
    missing = [i for i in ids if f'id="{i}"' not in html]
    assert missing == []
