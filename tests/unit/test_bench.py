"""The benchmark's bookkeeping (not its measurements, which are never timed tests): report and units."""

from pathlib import Path

from bench import report
from bench.payments import dynamodb_item_size


def test_the_run_rewrites_only_its_own_section_of_benchmarks_md(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\nWritten by hand.\n\n{report.BEGIN}\nold numbers\n{report.END}\n\nAlso by hand.\n")

    report.write(path, f"{report.BEGIN}\nnew numbers\n{report.END}\n")

    assert path.read_text() == (
        f"# Benchmarks\n\nWritten by hand.\n\n{report.BEGIN}\nnew numbers\n{report.END}\n\nAlso by hand.\n"
    )


def test_a_missing_benchmarks_md_is_created_with_the_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"

    report.write(path, f"{report.BEGIN}\nnumbers\n{report.END}\n")

    assert f"{report.BEGIN}\nnumbers\n{report.END}" in path.read_text()


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    item = {"orderId": {"S": "order-1"}, "amount": {"N": "2500"}, "paid": {"BOOL": True}}

    # 7 + 7 (name + string), 6 + 3 (name + 4 digits: 1 + 2 bytes), 4 + 1 (name + boolean)
    assert dynamodb_item_size(item) == 28
