"""One app, several page kinds: each under its own prefix, one token for all of them."""

import pytest

from robreward.codegen.choose import ask, choose_page
from robreward.feedback.preferences.app import label_page
from robreward.web.app import create_web_app
from robreward.web.server import BackgroundServer

from tests.feedback.test_app import make_run
from tests.web.client import Site


def test_the_labeling_page_and_the_chooser_share_one_app_and_one_token(tmp_path):
    run, _, ids = make_run(tmp_path)
    ask(tmp_path / "gen" / "iter_00", 0, [{"id": "cand_00", "fitness": 0.1}, {"id": "cand_01", "fitness": 0.2}])
    app = create_web_app([label_page(run), choose_page(tmp_path / "gen")], token_dir=run)
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        label = Site.from_url(server.url)
        choose = Site(label.host, label.port, "/choose", label.token)
        assert label.prefix == "/label"
        index = label.get("/", prefix=False)
        assert index.status == 200 and b'href="/label/"' in index.body and b'href="/choose/"' in index.body
        assert label.get_json("/api/next")[1]["query"]["id"] == ids[0]
        assert choose.get_json("/api/pending")[1]["iteration"] == 0
        assert b"Which policy does the task best" in choose.get("/").body
        assert choose.get("/api/pending", token=None).status == 403
        assert choose.post_json("/api/choice", {"iteration": 0, "best": "cand_01", "worst": "cand_00"})[0] == 200
        assert label.post_json("/api/label", {"query_id": ids[0], "value": 1})[0] == 200


def test_page_kinds_must_be_distinct(tmp_path):
    run, _, _ = make_run(tmp_path)
    page = label_page(run)
    with pytest.raises(ValueError, match="pages need distinct lower-case kinds"):
        create_web_app([page, page], token_dir=run)
    page.close()
