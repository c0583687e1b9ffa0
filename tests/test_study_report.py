"""The study's report: the document model (Markdown escaping, HTML that parses), the
answer's counts against hand-counted verdicts, and a real study's report.md and
report.html (the answer first, one compact table, figures embedded)."""

from __future__ import annotations

import base64
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from simulator.document import Bullets, Figure, Heading, Paragraph, Table, to_html, to_markdown
from simulator.errors import ConfigError
from simulator.study import StudyConfig, run_study
from simulator.study.answer import BENEFICIAL, DENSE_ONLY, NOT_BENEFICIAL, family_answers
from simulator.study.output import write_study
from simulator.study.report import storage_sentence, storage_summary

PNG = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}


class Checked(HTMLParser):
    """Records the tree's problems: unclosed or mismatched tags; collects headings,
    images, table rows and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.images: list[dict] = []
        self.rows: list[list[str]] = []  # per table, cells per row
        self.tables: list[list[int]] = []
        self._text: list[str] = []
        self._heading: str | None = None
        self._cells = 0

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            if tag == "img":
                self.images.append(dict(attrs))
            return
        self.stack.append(tag)
        if tag in ("h1", "h2", "h3"):
            self._heading, self._text = tag, []
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._cells = 0
        elif tag in ("td", "th"):
            self._cells += 1

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == self._heading:
            self.headings.append((tag, "".join(self._text)))
            self._heading = None
        elif tag == "tr":
            self.tables[-1].append(self._cells)

    def handle_data(self, data):
        self._text.append(data)


def parse(page: str) -> Checked:
    p = Checked()
    p.feed(page)
    p.close()
    assert not p.problems, p.problems[:5]
    assert p.stack == [], f"unclosed: {p.stack}"
    return p


# --- the document model -------------------------------------------------------------


def test_markdown_escapes_marks_but_not_words(tmp_path):
    blocks = [
        Heading("a *title*", 1),
        Paragraph("bert_base at **8x**, `code_x`, a|b, <b>, <=1.5x, _edge"),
        Table(headers=("h",), rows=((1.5,), (math.inf,), ("x*",))),
    ]
    md = to_markdown(blocks, tmp_path)
    assert "# a \\*title\\*" in md
    assert "bert_base at **8x**, `code_x`, a\\|b, \\<b>, <=1.5x, \\_edge" in md
    assert "| 1.5 |" in md and "| never |" in md and "| x\\* |" in md


def test_html_is_well_formed_escaped_and_embeds_figures(tmp_path):
    png = tmp_path / "f.png"
    png.write_bytes(PNG + b"\x00" * 16)
    svg = tmp_path / "g.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>')
    blocks = [
        Heading("T <script>", 1),
        Bullets(("one **two**", "x < y & z")),
        Table(headers=("a", "b"), rows=((1.0, "p"), (2.0, "q")), align_right=(True, False)),
        Figure(png, "a png"),
        Figure(svg, 'an "svg"'),
    ]
    page = to_html(blocks, "title <x>")
    p = parse(page)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert p.headings == [("h1", "T <script>")]
    assert p.tables == [[2, 2, 2]]  # header row and two rows, two cells each
    srcs = [i["src"] for i in p.images]
    assert srcs[0].startswith("data:image/png;base64,")
    assert base64.b64decode(srcs[0].split(",", 1)[1]) == png.read_bytes()
    assert base64.b64decode(srcs[1].split(",", 1)[1]) == svg.read_bytes()
    assert [i["alt"] for i in p.images] == ["a png", 'an "svg"']
    md = to_markdown(blocks, tmp_path)
    assert "![a png](f.png)" in md


# --- the answer's counts --------------------------------------------------------------


def _row(platform, cls, network, **kw):
    row = {
        "network": network,
        "platform": platform,
        "platform_class": cls,
        "margin": 0.05,
        "speedup_vs_dense": 1.0,
        "energy_ratio_vs_dense": 1.0,
        "latency_vs_structured_same_rate": 2.0,
        "energy_vs_structured_same_rate": 2.0,
        "equal_accuracy": "unknown structured rate",
        "latency_vs_structured_equal_accuracy": math.nan,
        "energy_vs_structured_equal_accuracy": math.nan,
        "beats_dense_latency": False,
        "beats_dense_energy": False,
        "beats_structured_latency": False,
        "beats_structured_energy": False,
        "beats_structured_at_equal_accuracy_latency": None,
        "beats_structured_at_equal_accuracy_energy": None,
    }
    row.update(kw)
    return row


def test_family_answers_count_by_hand():
    v = pd.DataFrame(
        [
            # GPU: beats dense once, loses to structured at equal accuracy, one undecided
            _row(
                "g1",
                "gpu",
                "n1",
                speedup_vs_dense=1.5,
                beats_dense_latency=True,
                equal_accuracy="compared",
                latency_vs_structured_equal_accuracy=1.3,
                energy_vs_structured_equal_accuracy=1.2,
                beats_structured_at_equal_accuracy_latency=False,
                beats_structured_at_equal_accuracy_energy=False,
            ),
            _row("g1", "gpu", "n2", speedup_vs_dense=0.5),
            # ASIC: a same-rate win (undecided at equal accuracy: still a win), an
            # equal-accuracy energy win, a platform with no speedup at all
            _row(
                "a1",
                "asic",
                "n1",
                speedup_vs_dense=3.0,
                energy_ratio_vs_dense=0.5,
                beats_dense_latency=True,
                beats_dense_energy=True,
                latency_vs_structured_same_rate=0.5,
                energy_vs_structured_same_rate=0.9,
                beats_structured_latency=True,
            ),
            _row(
                "a1",
                "asic",
                "n2",
                speedup_vs_dense=2.0,
                beats_dense_latency=True,
                equal_accuracy="compared",
                latency_vs_structured_equal_accuracy=1.1,
                energy_vs_structured_equal_accuracy=0.8,
                beats_structured_at_equal_accuracy_latency=False,
                beats_structured_at_equal_accuracy_energy=True,
            ),
            _row("a2", "asic", "n1"),
            _row("a2", "asic", "n2", equal_accuracy="beyond grid"),
            # CPU: nothing wins
            _row("c1", "cpu", "n1", speedup_vs_dense=0.9),
        ]
    )
    cpu, gpu, asic = family_answers(v)  # families in the order CPUs, GPUs, FPGAs, ASICs
    assert (cpu.family, gpu.family, asic.family) == ("cpu", "gpu", "asic")
    assert cpu.answer == NOT_BENEFICIAL and cpu.pairs == 1 and cpu.undecided == 1
    assert gpu.answer == DENSE_ONLY
    assert (gpu.dense_latency, gpu.dense_energy, gpu.structured_lost, gpu.undecided) == (
        1,
        0,
        1,
        1,
    )
    assert gpu.speedup_range == (0.5, 1.5)
    assert asic.answer == BENEFICIAL
    assert asic.platforms == ("a1", "a2") and asic.no_speedup == ("a2",)
    assert [(p.network, p.latency, p.energy) for p in asic.structured] == [
        ("n1", 0.5, 0.9),  # same-rate ratios: not compared at equal accuracy
        ("n2", 1.1, 0.8),  # equal-accuracy ratios
    ]
    assert (asic.equal_compared, asic.equal_beyond_grid, asic.undecided) == (1, 1, 2)
    assert [p.network for p in asic.dense] == ["n1", "n2"]  # best speedup first


def test_storage_headline_counts_never_rows():
    be = pd.DataFrame(
        {
            "network": ["a", "b", "c", "a", "b", "c"],
            "layer": ["(network)"] * 6,
            "structure": ["filter"] * 6,
            "structured_rate": [2.0, 2.0, 2.0, 16.0, 16.0, 16.0],
            "weight_bits": [8] * 6,
            "index_bits": [4] * 6,
            "ratio": [1.5, 1.6, 1.52, 20.0, math.inf, 30.0],
        }
    )
    s = storage_summary(be)
    row = s[s["structured_rate"] == 16.0].iloc[0]
    assert (row["never"], row["never_networks"], row["ratio_min"]) == (1, "b", 20.0)
    assert row["ratio_median"] == 30.0  # the never row counts as the largest
    text = storage_sentence(s)
    assert "must be 1.5-1.6x sparser than 2x filter pruning, and 20x or more sparser " in text
    assert "than 16x filter pruning (over networks)" in text
    assert "No density is enough for 1 of 3 networks at 16x (b)" in text


# --- a real study's report ----------------------------------------------------------


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    cfg = StudyConfig(
        networks=("lenet5",),
        platforms=("eie", "a100", "scalesim_32x32_ws"),
        weight_bits=(8,),
        index_bits=(4,),
        structured_rates=(2.0, 4.0),
        sweep_rates=(2.0, 8.0, 32.0),
    )
    result = run_study(cfg, out, jobs=1)
    write_study(result)
    return result, out


def test_report_opens_with_the_answer_per_family(small_study):
    result, out = small_study
    md = (out / "report.md").read_text()
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads[:4] == ["## The answer", "## Verdict by platform", "## Evidence", "## Appendix"]
    answer = md.split("## The answer", 1)[1].split("## Verdict by platform", 1)[0]
    assert "**In short:**" in answer
    for family, platform in (("GPUs", "a100"), ("ASICs", "eie")):
        assert f"**{family} (" in answer and platform in answer
    v = result.tables["verdict"]
    compact = md.split("## Verdict by platform", 1)[1].split("## Evidence", 1)[0]
    rows = [line for line in compact.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + v["platform"].nunique()  # header and one row per platform
    # the compact table's win counts are the verdict's own
    for _, r in v.iterrows():
        line = next(x for x in rows if f"| {r['platform']} |" in x)
        assert f"| {int(r['beats_dense_latency'])}/{int(r['beats_dense_energy'])} of 1 |" in line


def test_report_html_renders(small_study):
    _, out = small_study
    page = (out / "report.html").read_text()
    p = parse(page)
    assert p.headings[0] == ("h1", "Is non-structured pruning beneficial on any platform?")
    assert p.headings[1] == ("h2", "The answer")
    for rows in p.tables:  # every table rectangular
        assert len(set(rows)) == 1, rows
    pngs = sorted((out / "plots").glob("*.png"))
    assert len(p.images) == len(pngs) > 0
    for img in p.images:
        assert img["src"].startswith("data:image/")
        data = base64.b64decode(img["src"].split(",", 1)[1])
        assert data[:8] == PNG or data.lstrip()[:5] in (b"<?xml", b"<svg ")
    assert 'src="plots/' not in page  # nothing outside the file


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


@pytest.mark.skipif(
    not any(shutil.which(b) for b in BROWSERS), reason="no Chromium to take a screenshot"
)
def test_report_html_screenshot(small_study, tmp_path):
    _, out = small_study
    browser = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,4000",
            (out / "report.html").resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = shot.read_bytes()
    assert data[:8] == PNG
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 4000)
    assert len(data) > 50_000  # a rendered page with tables and figures, not a blank one


def test_report_lists_figures_with_paths_that_exist(small_study):
    _, out = small_study
    md = (out / "report.md").read_text()
    links = [
        line.split("](", 1)[1].rstrip(")") for line in md.splitlines() if line.startswith("![")
    ]
    assert links and all((out / Path(link)).is_file() for link in links)


def test_a_result_writes_its_own_report_anywhere(small_study, tmp_path):
    result, out = small_study
    elsewhere = tmp_path / "copy"
    report = result.write(elsewhere)
    assert report == elsewhere / "report.md"
    for name in ("report.md", "report.html", "study.json", "tables/verdict.csv"):
        assert (elsewhere / name).is_file(), name
    assert not (elsewhere / "parts").exists()  # the results stay where they were computed
    assert report.read_text() == (out / "report.md").read_text().replace(str(out), str(elsewhere))
    # a folder holding another study's report is refused, unless forced
    other = StudyConfig(networks=("lenet5",), platforms=("eie",))
    theirs = tmp_path / "theirs"
    run_study(other, theirs, jobs=1).write()
    with pytest.raises(ConfigError, match="holds the results of another study"):
        result.write(theirs)
    assert result.write(theirs, force=True) == theirs / "report.md"
