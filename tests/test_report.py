"""``live-code report`` on the field's own libraries (issue 23, acceptance 1 and 3): predictions drawn
with Pillow over real JPEG, EXIF-rotated JPEG, BMP and 16-bit PNG images after a ``local`` training
then infer; curves from tensorboard's CRC-checked reader, a damaged event file named and the rest
written; without the report extra the page has the text and says how to install it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PIL", reason="the report extra (pip install -e '.[dev,report]', as tests/run.sh does)")
pytest.importorskip("matplotlib", reason="the report extra (pip install -e '.[dev,report]', as tests/run.sh does)")
pytest.importorskip("tensorboard", reason="the report extra (pip install -e '.[dev,report]', as tests/run.sh does)")

from PIL import Image

from live_code import sdk
from live_code.commands import local, report
from live_code.contract import TaskKind

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("cat", "dog", "bird")
#: where the job predicts, in the image as a viewer shows it (EXIF orientation applied)
BOX = (10, 12, 30, 20)
GREY = (128, 128, 128)

# trains (a model file and a stage, scalars through the SDK's own writer) and infers one box per image
JOB = textwrap.dedent(f"""
    import os
    from live_code import sdk
    env = sdk.read_env()
    names = sdk.read_config()["class_names"]
    if env.run_training:
        os.makedirs(env.output.models_dir + "/best", exist_ok=True)
        open(env.output.models_dir + "/best/model.txt", "w").write("weights")
        with sdk.ScalarWriter(env.output.tensorboard_dir) as tb:
            for step in range(1, 6):
                tb.add_scalar("loss", 1.0 / step, step)
        sdk.write_model_stage("best", ["model.txt"], 0.5)
    if env.run_infer:
        x, y, w, h = {BOX}
        det = sdk.Detection(class_name=names[-1], score=0.9, x=x, y=y, w=w, h=h)
        sdk.write_infer_result({{i.image_path: [det] for i in sdk.iter_items(sdk.Split.CANDIDATE)}})
""")


def _voc(name: str, size: tuple[int, int], cls: str) -> str:
    return (
        f"<annotation><filename>{name}</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size><object><name>{cls}</name><bndbox><xmin>5</xmin><ymin>5</ymin>"
        f"<xmax>40</xmax><ymax>30</ymax></bndbox></object></annotation>"
    )


def _dataset(root: Path) -> dict[str, str]:
    """JPEG, EXIF-rotated JPEG, BMP and 16-bit PNG images (96x80 as shown), each with VOC xml."""
    root.mkdir()
    shown = (96, 80)
    made = {}
    plain = Image.new("RGB", shown, GREY)
    plain.save(root / "plain.jpg", "JPEG", quality=95)
    made["plain.jpg"] = "JPEG"
    rotated = Image.new("RGB", (shown[1], shown[0]), GREY)  # stored 80x96; orientation 6 shows it 96x80
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(root / "rotated.jpg", "JPEG", quality=95, exif=exif.tobytes())
    made["rotated.jpg"] = "EXIF-rotated JPEG"
    plain.save(root / "bitmap.bmp", "BMP")
    made["bitmap.bmp"] = "BMP"
    deep = Image.new("I;16", shown, 128 * 256)
    deep.save(root / "deep.png", "PNG")
    assert Image.open(root / "deep.png").mode.startswith("I;16")
    made["deep.png"] = "16-bit PNG"
    for i, name in enumerate(made):
        (root / f"{Path(name).stem}.xml").write_text(_voc(name, shown, CLASSES[i % len(CLASSES)]))
    return made


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    made = _dataset(data)
    repo = root / "repo"
    repo.mkdir()
    (repo / "start.py").write_text(JOB)
    cache = root / "cache"
    os.environ["LIVE_CODE_CACHE"] = str(cache)

    def task(kind: TaskKind, work: str, **request: Any) -> local.LocalResult:
        asked = local.LocalRequest(
            repo=str(repo), kinds=frozenset({kind}), dataset=str(data), work=root / work, sandbox="off", **request
        )
        done = local.run(asked)
        assert done.ok, done.error
        return done

    try:
        train = task(TaskKind.TRAINING, "train", classes=CLASSES)
        infer = task(TaskKind.INFER, "infer", model=train.out_dir / "models")
    finally:
        del os.environ["LIVE_CODE_CACHE"]
    return {"root": root, "train": train.out_dir, "infer": infer.out_dir, "made": made}  # type: ignore[dict-item]  # Paths and a list in one fixture dict


def test_predictions_are_drawn_over_every_format_in_the_class_colour(runs: dict) -> None:
    result = report.write_report([runs["infer"]], dest=runs["root"] / "rep-infer", images=10)
    preds = [p for p in result.pngs if p.name.startswith("pred-")]
    assert len(preds) == len(runs["made"]) == 4, (result.pngs, result.notes)
    colour = report.colour_of(CLASSES[-1], CLASSES)
    assert colour == report.PALETTE[2]  # the class's place in class_names, the same in every picture
    x, y, w, h = BOX
    for png in preds:
        drawn = Image.open(png).convert("RGB")
        factor = drawn.width // 96
        assert drawn.size == (96 * factor, 80 * factor), f"{png}: shown orientation (EXIF applied)"
        mid_y = (y + h // 2) * factor
        assert drawn.getpixel((x * factor, mid_y)) == colour, png  # the left edge of the box
        assert drawn.getpixel(((x + w) * factor - 1, mid_y)) == colour, png  # the right edge
        inside = drawn.getpixel(((x + w // 2) * factor, mid_y))
        assert max(abs(a - b) for a, b in zip(inside, GREY)) <= 6, f"{png}: the image shows through the box"
        assert max(abs(a - b) for a, b in zip(drawn.getpixel((90 * factor, 75 * factor)), GREY)) <= 6
    page = result.html.read_text()
    assert all(f'src="{p.name}"' in page for p in preds) and "cannot draw" not in page
    for original in runs["made"]:  # the captions name the user's files (names.tsv of local)
        assert f"{runs['root'] / 'data' / original})" in page, original


def test_curves_come_from_the_sdk_writer_through_tensorboard(runs: dict) -> None:
    notes: list[str] = []
    scalars = report.read_scalars(runs["train"] / "tensorboard", notes)
    assert notes == []
    assert [s for s, _ in scalars["loss"]] == [1, 2, 3, 4, 5]
    assert scalars["loss"][1][1] == pytest.approx(0.5)
    result = report.write_report([runs["train"]], dest=runs["root"] / "rep-train")
    curve = result.html.parent / "curve-loss.png"
    assert curve in result.pngs and Image.open(curve).size[0] > 100
    assert "loss: 1 at step 1, 0.2 at step 5" in result.html.read_text()


def test_a_damaged_event_file_is_named_and_the_report_written(runs: dict, tmp_path: Path) -> None:
    out = tmp_path / "task" / "out"
    out.parent.mkdir()
    subprocess.run(["cp", "-r", str(runs["train"]), str(out)], check=True)
    events = sorted((out / "tensorboard").rglob("*tfevents*"))
    assert events
    data = bytearray(events[0].read_bytes())
    data[len(data) - 30] ^= 0x01  # one flipped bit inside the last records
    events[0].write_bytes(bytes(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        (sys.executable, "-m", "live_code", "report", str(out)), env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {events[0]}: damaged TensorBoard event file" in proc.stderr
    page = (tmp_path / "task" / "report" / "report.html").read_text()
    assert str(events[0]) in page and "damaged TensorBoard event file" in page
    assert "result.yaml" not in proc.stdout and "report: " in proc.stdout
    assert "best stage" in page, "the rest of the report is written"


def test_without_the_report_extra_the_text_is_written_and_the_install_named(runs: dict, tmp_path: Path) -> None:
    blocker = textwrap.dedent("""
        import sys
        class NoExtra:  # as if the report extra was not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"PIL", "matplotlib", "tensorboard"}:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, NoExtra())
        from live_code import cli
        sys.exit(cli.main(sys.argv[1:]))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        (sys.executable, "-c", blocker, "report", str(runs["infer"]), "--dest", str(tmp_path / "r")),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert report.INSTALL_EXTRA in proc.stderr and "Pillow, matplotlib, tensorboard not installed" in proc.stderr
    page = (tmp_path / "r" / "report.html").read_text()
    assert report.INSTALL_EXTRA.replace('"', "&quot;") in page
    assert "<img" not in page and "x, y, w, h" in page and f"{BOX[0]}, {BOX[1]}" in page
    assert list((tmp_path / "r").glob("*.png")) == []


def test_the_harness_run_path_imports_none_of_the_report_libraries() -> None:
    code = (
        "import sys; import live_code.cli, live_code.run.pipeline, live_code.commands.local, "
        "live_code.commands.replay, live_code.commands.check; "
        "bad = [m for m in ('PIL', 'matplotlib', 'tensorboard') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        (sys.executable, "-c", code),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sdk_scalar_writer_files_read_back_by_tensorboard(tmp_path: Path) -> None:
    with sdk.ScalarWriter(tmp_path) as writer:
        writer.add_scalar("loss", 0.75, 1)
        writer.add_scalar("loss", 0.25, 2)
        writer.add_scalar("mAP", 0.5, 2)
    assert report.read_scalars(tmp_path) == {"loss": [(1, 0.75), (2, 0.25)], "mAP": [(2, 0.5)]}


def test_cli_report_of_two_runs_writes_both(runs: dict, tmp_path: Path) -> None:
    from live_code import cli

    dest = tmp_path / "both"
    assert cli.main(["report", str(runs["train"]), str(runs["infer"]), "--dest", str(dest)]) == 0
    page = (dest / "report.html").read_text()
    assert (dest / "1-curve-loss.png").is_file() and (dest / "1-timings.png").is_file()
    assert any(p.name.startswith("2-pred-") for p in dest.iterdir())
    assert str(runs["train"]) in page and str(runs["infer"]) in page


# -- acceptance 2: the page in a real browser ---------------------------------------------------


def _chromium() -> str:
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("needs headless Chromium (Debian package chromium; tests/run.sh installs it as root)")
    return found


def _open(page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """The page in headless Chromium, all of it loaded (virtual time runs until nothing is pending)."""
    return subprocess.run(
        (
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            *flags,
            page.as_uri(),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _loaded(page: Path) -> dict[str, str]:
    """src -> data-loaded of every <img>, as the browser saw them after the load event."""
    proc = _open(page, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    import re

    marks = dict(re.findall(r'<img src="([^"]+)"[^>]*data-loaded="(yes|no)"', proc.stdout))
    count = re.search(r'data-images="(\d+) loaded (\d+)"', proc.stdout)
    assert count is not None, "the page's load script ran"
    assert int(count.group(1)) == len(marks), (count.group(0), marks)
    return marks


def test_the_report_page_opens_in_a_real_browser_with_every_picture(runs: dict, tmp_path: Path) -> None:
    dest = tmp_path / "rep"
    result = report.write_report([runs["train"], runs["infer"]], dest=dest, images=10)
    marks = _loaded(result.html)
    assert len(marks) == len(result.pngs) >= 6
    assert set(marks.values()) == {"yes"}, marks
    shot = tmp_path / "shot.png"
    proc = _open(result.html, f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    colours = {c for _, c in Image.open(shot).convert("RGB").getcolors(1 << 24) or []}
    assert report.colour_of(CLASSES[-1], CLASSES) in colours, "the drawn boxes are on the screen"
    # a broken picture is caught: the same check fails once a picture is gone
    victim = next(p for p in result.pngs if p.name.startswith("2-pred-"))
    victim.unlink()
    marks = _loaded(result.html)
    assert marks[victim.name] == "no" and list(marks.values()).count("no") == 1
    dom = _open(result.html, "--dump-dom").stdout
    assert f"picture missing: {victim.name}" in dom


# -- what each kind of task shows -----------------------------------------------------------------


def test_mining_shows_the_score_histogram_and_the_top_and_bottom_as_thumbnails(runs: dict, tmp_path: Path) -> None:
    infer = runs["infer"]
    out = tmp_path / "task" / "out"
    out.mkdir(parents=True)
    candidates = (infer.parent / "in" / "candidate-index.tsv").read_text().split()
    assert len(candidates) == 4
    (out / "result.tsv").write_text("".join(f"{c}\t{0.9 - i * 0.2:.2f}\n" for i, c in enumerate(candidates)))
    result = report.write_report([out], in_dirs=[infer.parent / "in"], dest=tmp_path / "rep")
    names = {p.name for p in result.pngs}
    assert {"mining-scores.png", "mining-top.png", "mining-bottom.png"} <= names, (names, result.notes)
    top = Image.open(tmp_path / "rep" / "mining-top.png")
    assert top.size[0] == 4 * (128 + 4), "one thumbnail per ranked image"
    page = result.html.read_text()
    assert "the top 4 of the ranking" in page and "histogram of the mining scores" in page


def test_training_shows_the_stages_and_the_per_class_ap_with_the_best_marked(runs: dict, tmp_path: Path) -> None:
    out = tmp_path / "task" / "out"
    out.parent.mkdir(exist_ok=True)
    subprocess.run(["cp", "-r", str(runs["train"]), str(out)], check=True)
    result_yaml = out / "models" / "result.yaml"
    import yaml

    data = yaml.safe_load(result_yaml.read_text())
    data["model_stages"]["epoch_1"] = {**data["model_stages"]["best"], "stage_name": "epoch_1", "mAP": 0.2}
    data["model_stages"]["best"]["class_aps"] = {"cat": 0.7, "dog": 0.4, "bird": 0.4}
    result_yaml.write_text(yaml.safe_dump(data))
    result = report.write_report([out], dest=tmp_path / "rep")
    names = {p.name for p in result.pngs}
    assert {"stages-mAP.png", "class-AP.png"} <= names
    chart = Image.open(tmp_path / "rep" / "stages-mAP.png").convert("RGB")
    colours = {c for _, c in chart.getcolors(1 << 20) or []}
    assert (255, 127, 14) in colours and (31, 119, 180) in colours, "the best stage in its own colour"
    assert "the best (best) marked" in result.html.read_text()


def test_two_runs_side_by_side_overlay_the_curves_and_diff_the_metrics(runs: dict, tmp_path: Path) -> None:
    second = tmp_path / "second" / "out"
    second.parent.mkdir()
    subprocess.run(["cp", "-r", str(runs["train"]), str(second)], check=True)
    import yaml

    result_yaml = second / "models" / "result.yaml"
    data = yaml.safe_load(result_yaml.read_text())
    data["model_stages"]["best"]["mAP"] = 0.75
    result_yaml.write_text(yaml.safe_dump(data))
    result = report.write_report([runs["train"], second], dest=tmp_path / "rep")
    assert tmp_path / "rep" / "compare-curve-loss.png" in result.pngs
    page = result.html.read_text()
    assert "the runs compared" in page and "<td>+0.25</td>" in page


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "P"), ("WEBP", "RGB"), ("PNG", "LA"), ("PNG", "1")])
def test_draw_boxes_reads_palette_webp_and_other_modes(tmp_path: Path, fmt: str, mode: str) -> None:
    from PIL import features

    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("this Pillow was built without WebP")
    source = tmp_path / f"img.{fmt.lower()}"
    Image.new("RGB", (64, 48), GREY).convert(mode).save(source, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    target = report.draw_boxes(
        source,
        [{"class_name": "dog", "score": 0.8, "box": {"x": 8, "y": 10, "w": 20, "h": 16}}],
        CLASSES,
        tmp_path / "drawn.png",
    )
    drawn = Image.open(target).convert("RGB")
    factor = drawn.width // 64
    assert drawn.size == (64 * factor, 48 * factor)
    assert drawn.getpixel((8 * factor, 18 * factor)) == report.colour_of("dog", CLASSES) == report.PALETTE[1]


def test_ground_truth_is_drawn_beside_the_predictions(runs: dict, tmp_path: Path) -> None:
    truth = json.loads((runs["infer"].parent / local.GROUND_TRUTH).read_text())
    assert len(truth) == 4, "every image of the VOC folder has its boxes"
    result = report.write_report([runs["infer"]], dest=tmp_path / "rep", images=10)
    pictures = sorted(p for p in result.pngs if p.name.startswith("truth-"))
    assert len(pictures) == 4
    for png in pictures:
        asset = next(a for a in truth if a.startswith(png.stem.split("truth-")[1]))
        (box,) = truth[asset]
        assert (box["box"]["x"], box["box"]["y"], box["box"]["w"], box["box"]["h"]) == (5, 5, 36, 26)
        drawn = Image.open(png).convert("RGB")
        factor = drawn.width // 96
        colour = report.colour_of(box["class_name"], CLASSES)
        assert drawn.getpixel((5 * factor, (5 + 13) * factor)) == colour, png
    page = result.html.read_text()
    assert page.count('<div class="pair">') == 4 and "ground truth: 1 boxes" in page
