"""Credentials kept out of what is written, and catalog hrefs kept inside their folder."""

import pytest

from metaflood.acquire.security import resolve_href
from metaflood.core.errors import AcquisitionError
from metaflood.core.redact import redact_text, redact_url

SAS = (
    "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/34/S/FA/B04.tif"
    "?st=2023-09-01T00%3A00%3A00Z&se=2023-09-02T00%3A00%3A00Z&sp=rl&sv=2021-06-08"
    "&sr=c&skoid=abc&sktid=def&skt=x&ske=y&sks=b&skv=2021-06-08&sig=SeCrEt%2B%3D"
)


def test_a_sas_token_is_removed_from_a_url():
    clean = redact_url(SAS)
    assert clean == "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/34/S/FA/B04.tif"


def test_user_info_and_presigned_parameters_are_removed_but_others_kept():
    url = "https://user:pa55@host.example/a.tif?X-Amz-Signature=abc&X-Amz-Credential=k&v=2"
    assert redact_url(url) == "https://host.example/a.tif?v=2"
    assert redact_url("/local/path.tif") == "/local/path.tif"


def test_urls_inside_a_message_are_redacted():
    message = f"CURL error for {SAS}: HTTP response code: 403"
    assert "SeCrEt" not in redact_text(message) and "skoid" not in redact_text(message)
    assert "HTTP response code: 403" in redact_text(message)


ROOT = "http://127.0.0.1:8000/catalogs/maxar/"
ITEM = ROOT + "event/item.json"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("./B04.tif", ROOT + "event/B04.tif"),
        ("../shared/B04.tif", ROOT + "shared/B04.tif"),
        ("https://elsewhere.example/B04.tif", "https://elsewhere.example/B04.tif"),
        ("s3://bucket/key/B04.tif", "s3://bucket/key/B04.tif"),
    ],
)
def test_a_remote_catalog_may_name_assets_under_its_folder_or_remote(href, expected):
    assert resolve_href(href, ITEM, ROOT, where="item") == expected


@pytest.mark.parametrize(
    ("href", "why"),
    [
        ("../../../etc/passwd", "escapes the catalog folder"),
        ("../../other/B04.tif", "escapes the catalog folder"),
        ("file:///etc/passwd", "local files"),
        ("/etc/passwd", "local files"),
        ("/vsicurl/http://x/y.tif", "GDAL virtual"),
        ("ftp://host/B04.tif", "unsupported scheme"),
        ("..\\..\\B04.tif", "invalid characters"),
    ],
)
def test_a_remote_catalog_may_not_escape(href, why):
    with pytest.raises(AcquisitionError, match=why):
        resolve_href(href, ITEM, ROOT, where="item x")


def test_a_stac_api_must_give_absolute_remote_hrefs():
    assert resolve_href("https://h/a.tif", "", None, where="item") == "https://h/a.tif"
    for href in ("a.tif", "file:///a.tif", "/a.tif"):
        with pytest.raises(AcquisitionError, match="refused href"):
            resolve_href(href, "", None, where="item")


def test_a_local_catalog_keeps_to_its_folder(tmp_path):
    catalog = tmp_path / "catalog"
    (catalog / "items").mkdir(parents=True)
    item = catalog / "items" / "item.json"
    assert resolve_href("./B04.tif", str(item), str(catalog), where="i") == str(
        catalog / "items" / "B04.tif"
    )
    assert resolve_href(f"file://{catalog}/items/B04.tif", str(item), str(catalog), where="i")
    for href in ("../../secret.tif", "/etc/passwd", f"file://{tmp_path}/secret.tif"):
        with pytest.raises(AcquisitionError, match="escapes the catalog folder"):
            resolve_href(href, str(item), str(catalog), where="i")


def test_credentials_left_in_pieces_of_a_url_are_redacted():
    """urllib3 logs a retry with the path and query alone, no scheme or host."""
    message = (
        "Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(...)': "
        "/stac?sig=SIG-SECRET&v=1 (from //user:pw-SECRET@127.0.0.1:9)"
    )
    clean = redact_text(message)
    assert "SECRET" not in clean
    assert "/stac?sig=[redacted]&v=1" in clean and "//127.0.0.1:9" in clean
    assert redact_url("ftp://user:pw@host/x") == "ftp://host/x"  # any scheme's user:password


@pytest.mark.parametrize(
    ("source", "key"),
    [
        (
            {"source": "stac", "url": "http://user:pw-SECRET@127.0.0.1:9/stac", "collection": "c"},
            "events.e.sar.url",
        ),
        (
            {"source": "static", "catalog": "https://h/catalog.json?sv=1&sig=SIG-SECRET"},
            "events.e.sar.catalog",
        ),
    ],
)
def test_credentials_in_a_configured_url_are_refused_naming_the_key(source, key):
    from metaflood.acquire.sources import resolve_source
    from metaflood.core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        resolve_source({**source, "assets": {"VV": "v", "VH": "h"}}, "sar", None, "events.e.sar")
    assert str(err.value).startswith(f"{key}: the URL carries credentials")
    assert "SECRET" not in str(err.value)


def test_credentials_in_the_authors_checkpoint_url_are_refused():
    from metaflood.core.errors import ConfigError
    from metaflood.model.checks import check_model_sections

    authors = {"path": "a.pth", "url": "https://u:pw-SECRET@drive.example/uc?id=x&token=T-SECRET"}
    with pytest.raises(ConfigError, match=r"model.authors_checkpoint.url: the URL carries") as err:
        check_model_sections({"model": {"checkpoint": None, "authors_checkpoint": authors}})
    assert "SECRET" not in str(err.value) and "https://drive.example/uc?id=x" in str(err.value)


def test_every_command_logs_without_credentials():
    """The commands' log handler redacts every line, whichever library wrote it."""
    import subprocess
    import sys

    script = (
        "import logging; from metaflood.cli import configure_logging; configure_logging(); "
        "logging.getLogger('urllib3.connectionpool').warning("
        "'Retrying after %s: %s', 'error', '/stac?sig=SIG-SECRET&v=1')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "/stac?sig=[redacted]&v=1" in result.stderr and "SECRET" not in result.stderr
