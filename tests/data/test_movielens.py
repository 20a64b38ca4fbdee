import pytest

from promptrec.data import DatasetUnavailable, load_dataset, movielens


@pytest.mark.integration  # the real dataset, found through PROMPTREC_DATA_DIR
def test_ml_latest_small_loads_with_tags_as_text(movielens):
    assert len(movielens.catalog) == 9742
    assert len(movielens.interactions) == 100836
    assert len(movielens.interactions.users) == 610
    toy = movielens.catalog["1"]
    assert toy.title == "Toy Story (1995)"
    assert "Animation" in toy.fields["genres"] and toy.fields["tags"]
    assert movielens.reports[1].dropped == {}


def test_missing_data_offline_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("ml-latest-small", tmp_path, allow_download=False)
    assert str(tmp_path) in str(err.value) and "PROMPTREC_DATA_DIR" in str(err.value)


def test_failed_download_is_one_clear_message(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        movielens.download(tmp_path, url="http://127.0.0.1:9/ml-latest-small.zip", timeout=5)
    message = str(err.value)
    assert "downloading it from http://127.0.0.1:9" in message and "unzip it" in message


def test_download_unpacks_a_grouplens_style_zip(tmp_path):
    """A real HTTP download from a local server serving the same zip layout as GroupLens."""
    import http.server
    import io
    import threading
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ml-latest-small/movies.csv", "movieId,title,genres\n1,A (2000),Drama\n")
        z.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,5\n")
        z.writestr("ml-latest-small/README.txt", "licence")
    payload = archive.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        movielens.download(tmp_path, url=f"http://127.0.0.1:{server.server_port}/x.zip")
    finally:
        server.shutdown()
    data = load_dataset("ml-latest-small", tmp_path, allow_download=False)
    assert len(data.catalog) == 1 and (tmp_path / "ml-latest-small" / "README.txt").exists()
