"""Mining with a model through the SDK (live_code/sdk/_miner.py): CALD's augmentations dispatched to
a framework's image operations, CALD's score over them, the per-algorithm dispatch and the loop
over the candidates. The "framework" here is a small pure-Python image type with real operations."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from live_code import contract, sdk
from live_code.contract import TaskKind
from tests.helpers.sdk_tasks import make_task

FILL = 9


class Grid:
    """A single-channel image, ``rows[y][x]``, that copies and slices like a 2D numpy array."""

    def __init__(self, rows: list[list[int]]) -> None:
        self.rows = rows

    @classmethod
    def blank(cls, width: int, height: int, value: int = 0) -> Grid:
        return cls([[value] * width for _ in range(height)])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0])

    def copy(self) -> Grid:
        return Grid([list(r) for r in self.rows])

    def __setitem__(self, where: tuple[slice, slice], value: int) -> None:
        ys, xs = where
        for row in self.rows[ys]:
            row[xs] = [value] * len(row[xs])

    def where(self, value: int) -> set[tuple[int, int]]:
        return {(x, y) for y, row in enumerate(self.rows) for x, v in enumerate(row) if v == value}


class GridAugment(sdk.CaldOps[Grid]):
    """CALD's augmentations on a Grid (nearest-neighbour sampling)."""

    def flip(self, image: Grid) -> Grid:
        return Grid([row[::-1] for row in image.rows])

    def shrink(self, image: Grid, width: int, height: int) -> Grid:
        h, w = image.shape
        out = Grid.blank(w, h, FILL)
        for y in range(height):
            for x in range(width):
                out.rows[y][x] = image.rows[y * h // height][x * w // width]
        return out

    def rotate(self, image: Grid, degrees: float, centre: tuple[float, float]) -> Grid:
        h, w = image.shape
        cx, cy = centre
        cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        out = Grid.blank(w, h, FILL)
        for y in range(h):
            for x in range(w):  # the source of each pixel: turned back, clockwise on screen (y down)
                dx, dy = x + 0.5 - cx, y + 0.5 - cy
                sx, sy = math.floor(cx + dx * cos - dy * sin), math.floor(cy + dx * sin + dy * cos)
                if 0 <= sx < w and 0 <= sy < h:
                    out.rows[y][x] = image.rows[sy][sx]
        return out

    def cutout(self, image: Grid, side: int, count: int, seed: int) -> Grid:
        draw = random.Random(seed).randrange
        return sdk.cald_cutout(image, side, count, draw, FILL)


def ones_box(image: Grid) -> list[tuple[float, ...]]:
    """A detector of the pixels 1: their bounding box, score 0.9, class 0."""
    found = image.where(1)
    if not found:
        return []
    xs, ys = [x for x, _ in found], [y for _, y in found]
    return [(min(xs), min(ys), max(xs) + 1.0, max(ys) + 1.0, 0.9, 0)]


class GridOps(GridAugment, sdk.ImageMiner[Grid]):
    """A model on Grids that finds the pixels 1."""

    def size(self, image: Grid) -> tuple[int, int]:
        return image.shape[1], image.shape[0]

    def boxes(self, image: Grid) -> list[tuple[float, ...]]:
        return ones_box(image)


def _square(width: int = 40, height: int = 30) -> Grid:
    image = Grid.blank(width, height)
    image[6:18, 4:16] = 1
    return image


# -- the augmentations ----------------------------------------------------------------------------


def test_the_augmentation_geometry() -> None:
    assert sdk.cald_resized(40, 30) == (32, 24)
    assert sdk.cald_resized(1, 1) == (1, 1)  # never empty
    assert sdk.cald_cutout_side(40, 30) == 3
    assert sdk.cald_cutout_side(5, 200) == 1
    assert sdk.CALD_CUTOUT_SQUARES == 4


def test_cald_augment_draws_each_kind_with_the_frameworks_operations() -> None:
    image, ops = _square(), GridOps()
    assert sdk.cald_augment("flip", image, 40, 30, 0, ops).where(1) == {(39 - x, y) for x, y in image.where(1)}
    shrunk = sdk.cald_augment("resize", image, 40, 30, 0, ops)
    assert (shrunk.where(0) | shrunk.where(1)) == {(x, y) for x in range(32) for y in range(24)}  # top-left 32x24
    assert shrunk.where(1) == {(x, y) for x in range(4, 13) for y in range(5, 15)}
    # 5 degrees counter-clockwise about the centre, as sdk.augment_box maps a box: far from the
    # centre, a turn the other way would move the square by about 4 pixels
    corner = Grid.blank(100, 80)
    corner[60:70, 85:95] = 1
    turned = sdk.cald_augment("rotate", corner, 100, 80, 0, ops).where(1)
    x1, y1, x2, y2 = sdk.augment_box("rotate", (85, 60, 95, 70), 100, 80)
    assert (x1 + x2) / 2 == pytest.approx(sum(x for x, _ in turned) / len(turned) + 0.5, abs=0.6)
    assert (y1 + y2) / 2 == pytest.approx(sum(y for _, y in turned) / len(turned) + 0.5, abs=0.6)
    with pytest.raises(ValueError, match="unknown augmentation 'blur'"):
        sdk.cald_augment("blur", image, 40, 30, 0, ops)


def test_cald_cutout_draws_its_squares_from_the_frameworks_generator() -> None:
    image = Grid.blank(40, 30)
    out = sdk.cald_augment("cutout", image, 40, 30, 11, GridOps())
    assert image.where(FILL) == set()  # a copy: the input is left as it was
    draw = random.Random(11).randrange
    corners = [(draw(30 - 3 + 1), draw(40 - 3 + 1)) for _ in range(4)]  # y first, then x
    assert out.where(FILL) == {(x + i, y + j) for y, x in corners for i in range(3) for j in range(3)}
    assert sdk.cald_augment("cutout", image, 40, 30, 11, GridOps()).rows == out.rows
    assert sdk.cald_augment("cutout", image, 40, 30, 12, GridOps()).rows != out.rows


def test_an_operation_the_template_lacks_names_what_needs_it() -> None:
    with pytest.raises(NotImplementedError, match="CaldOps has no shrink: cald needs it"):
        sdk.cald_augment("resize", _square(), 40, 30, 0, sdk.CaldOps[Grid]())


# -- the scores -----------------------------------------------------------------------------------


def test_cald_image_score_compares_the_boxes_under_augmentation() -> None:
    ops = GridOps()
    consistent = sdk.cald_image_score(_square(), 40, 30, 0, ops, ops.boxes)
    assert 0.0 <= consistent < 0.3  # the square is found again, a little off after resize and rotate

    def blind_when_augmented(image: Grid) -> list[tuple[float, ...]]:
        return ops.boxes(image) if image is plain else []

    plain = _square()
    assert sdk.cald_image_score(plain, 40, 30, 0, ops, blind_when_augmented) == 1.0
    assert sdk.cald_image_score(Grid.blank(40, 30), 40, 30, 0, ops, ops.boxes) == -sdk.CALD_BETA


class Fixed(GridOps):
    """A model whose entropy and aldd inputs are fixed, recorded per path."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def confidences(self, path: str) -> Sequence[float]:
        self.asked.append(("confidences", path))
        return [0.5, 0.9]

    def class_maps(self, path: str) -> tuple[list[list[list[list[float]]]], int]:
        self.asked.append(("class_maps", path))
        return [[[[0.1, 0.9] * 4] * 8]], 8

    def read(self, path: str) -> Grid:
        self.asked.append(("read", path))
        return _square()


def test_image_score_dispatches_on_the_algorithm() -> None:
    miner = Fixed()
    assert sdk.image_score("random", miner, "/in/a.png", 0) == sdk.random_score("/in/a.png")
    assert miner.asked == []  # random needs no model
    assert sdk.image_score("entropy", miner, "/in/a.png", 0) == sdk.entropy_score([0.5, 0.9])
    maps = [[[[0.1, 0.9] * 4] * 8]]
    assert sdk.image_score("aldd", miner, "/in/b.png", 1, [2.0]) == sdk.aldd_score(maps, [2.0], input_size=8)
    assert sdk.image_score("cald", miner, "/in/c.png", 2) == sdk.cald_image_score(
        _square(), 40, 30, 2, miner, miner.boxes
    )
    assert miner.asked == [("confidences", "/in/a.png"), ("class_maps", "/in/b.png"), ("read", "/in/c.png")]
    with pytest.raises(ValueError, match="unknown mining algorithm 'best'"):
        sdk.image_score("best", miner, "/in/a.png", 0)
    with pytest.raises(NotImplementedError, match="GridOps has no confidences: entropy needs them"):
        sdk.image_score("entropy", GridOps(), "/in/a.png", 0)


class Cells:
    """A framework's 1D array, enough for GridMiner: masked by a comparison, turned into a list."""

    def __init__(self, values: Sequence[object]) -> None:
        self.values = list(values)

    def __gt__(self, other: float) -> list[bool]:
        return [v > other for v in self.values]

    def __getitem__(self, mask: list[bool]) -> Cells:
        return Cells([v for v, keep in zip(self.values, mask) if keep])

    def __iter__(self) -> Iterator[Cells]:
        return iter(Cells(v) for v in self.values)

    def tolist(self) -> list[object]:
        return list(self.values)


class Head:
    """The post-processing of a "network" whose raw output is the Grid: a cell per pixel, its value
    over 10 the confidence; one class, whose map is the confidences; the pixels 1 as the box."""

    @staticmethod
    def decode(raw: Grid) -> tuple[None, Cells, None]:
        return None, Cells([v / 10 for row in raw.rows for v in row]), None

    @staticmethod
    def class_probability_maps(raw: Grid) -> list[list[Cells]]:
        return [[Cells([[v / 10 for v in row] for row in raw.rows])]]

    @staticmethod
    def predict(raw: Grid, conf_thres: float, iou_thres: float) -> list[Cells]:
        return [Cells([b for b in ones_box(raw) if b[4] > conf_thres])]


class TinyMiner(GridAugment, sdk.GridMiner[Grid]):
    def read(self, path: str) -> Grid:
        image = Grid.blank(8, 8)
        image[2:5, 1:4] = 1
        image[0:1, 0:2] = int(Path(path).stem)  # two cells scoring the file's number / 10
        return image

    def forward(self, image: Grid) -> Grid:
        return image


def test_grid_miner_feeds_each_algorithm_from_the_heads_post_processing() -> None:
    miner = TinyMiner(Head, 8, 0.25, 0.45)
    assert miner.size(miner.read("/in/3.png")) == (8, 8)
    assert miner.confidences("/in/3.png") == [0.3, 0.3]  # strictly over 0.25: the 0.1 cells are left out
    assert miner.confidences("/in/2.png") == []
    maps, input_size = miner.class_maps("/in/3.png")
    assert input_size == 8 and len(maps) == 1 and len(maps[0]) == 1 and maps[0][0][0][:3] == [0.3, 0.3, 0.0]
    assert miner.boxes(miner.read("/in/3.png")) == [(1, 2, 4.0, 5.0, 0.9, 0)]
    assert sdk.image_score("entropy", miner, "/in/3.png", 0) == sdk.entropy_score([0.3, 0.3])
    assert sdk.image_score("aldd", miner, "/in/3.png", 0) == sdk.aldd_score(maps, input_size=8)
    assert 0.0 <= sdk.image_score("cald", miner, "/in/3.png", 0) < 1.0
    assert sdk.image_score("cald", TinyMiner(Head, 8, 0.95, 0.45), "/in/3.png", 0) == -sdk.CALD_BETA  # no box
    with pytest.raises(NotImplementedError, match="GridMiner has no forward"):
        sdk.GridMiner[Grid](Head, 8, 0.25, 0.45).forward(Grid.blank(8, 8))


def test_mine_images_scores_every_candidate_and_writes_result_tsv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(contract.ENV_FILE_VAR, str(make_task(tmp_path, "1.1.0", {TaskKind.MINING})))
    monkeypatch.delenv(contract.CONFIG_FILE_VAR, raising=False)
    paths = [f"/in/assets/{i}.png" for i in range(3)]
    (tmp_path / "in" / "candidate-index.tsv").write_text("".join(p + "\n" for p in paths))

    scores = sdk.mine_images("entropy", Fixed())
    assert scores == [(p, sdk.entropy_score([0.5, 0.9])) for p in paths]
    assert len((tmp_path / "out" / "result.tsv").read_text().splitlines()) == 3
    assert sdk.mine_images("random", Fixed(), paths=paths[:1]) == [(paths[0], sdk.random_score(paths[0]))]
