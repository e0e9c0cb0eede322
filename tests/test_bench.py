import json

from zeroshot_unlearn.bench import PROTOCOL_REQUESTS, parse_requests, run_bench, save_results

SCHEMA = {"method", "classes", "df", "dr", "df_original", "dr_original", "dr_retrain", "time_s", "epoch_equivalents",
          "retained_images", "forget_images_used"}


def test_protocol_requests():
    assert len(PROTOCOL_REQUESTS) == 15 and [3, 7] in PROTOCOL_REQUESTS and [0, 1, 2, 3, 4] in PROTOCOL_REQUESTS
    assert parse_requests("3,7;0") == [[3, 7], [0]]
    assert parse_requests("protocol") == PROTOCOL_REQUESTS


def test_digits_bench_row_schema_and_files(tmp_path):
    results = run_bench("digits", requests=[[3, 7]], progress=False)
    row = results["rows"][0]
    assert SCHEMA <= set(row)
    assert row["forget_images_used"] == 0 and row["retained_images"] <= 400
    assert row["dr_retrain"] is not None and row["df"] <= 1.0
    assert row["epoch_equivalents"] > 0 and row["epoch_seconds"] > 0
    save_results(results, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["suite"] == "digits"
    assert "| anti_memory | {3,7} |" in (tmp_path / "r.md").read_text()
