"""Attachments benchmark: what reading a phone photo costs.

Makes a realistic photo (4032x3024, gradients under noise, JPEG quality 95, about 6 MB, with an
EXIF orientation as phones write it), then --runs times each, alternating:

- the app's path: `read_upload` (decode, turn upright, drop metadata, downscale to a 1,568 px
  long side, re-encode to fit a part);
- the baseline: Pillow decoding the same file alone (`Image.open(...).load()`).

Each figure is the process's CPU time (`time.process_time()`): steadier than wall time on a
shared machine. Medians are printed with the part's bytes and the ratio app / baseline.
Targets: the part <= 0.5 MB; the app's path <= 0.5 s of CPU.

    .venv/bin/python bench/attachments.py [--runs N]

Exit 0 once measured, even when a target is missed (that is a result); 2 when it could not run.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageChops

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.attachments.reading import AttachmentRefused, read_upload  # noqa: E402

WIDTH, HEIGHT = 4032, 3024  # a 12 MP phone sensor
NOISE = 11  # sigma of the grain: about 6 MB at quality 95
ORIENTATION = 0x0112
TARGET_PART_BYTES = 500_000
TARGET_CPU_SECONDS = 0.5


def photo() -> bytes:
    """Gradients in three directions under per-channel grain, held upright by EXIF (6)."""
    across = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    down = Image.linear_gradient("L").rotate(90).resize((WIDTH, HEIGHT))
    noise = Image.effect_noise((WIDTH, HEIGHT), NOISE)
    channels = [ImageChops.add(base, noise.transpose(turn), offset=-128)
                for base, turn in ((across, Image.Transpose.FLIP_LEFT_RIGHT),
                                   (down, Image.Transpose.FLIP_TOP_BOTTOM),
                                   (ImageChops.blend(across, down, 0.5),
                                    Image.Transpose.ROTATE_180))]
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    out = io.BytesIO()
    Image.merge("RGB", channels).save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def cpu_seconds(work) -> tuple[float, object]:
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def pillow_alone(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def run(runs: int) -> None:
    data = photo()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, load average "
          f"{_load()}; a {WIDTH}x{HEIGHT} JPEG photo of {len(data) / 1e6:.1f} MB "
          f"(EXIF orientation 6)", flush=True)
    read_upload("IMG_0001.JPG", data)  # warm-up: imports, codecs
    pillow_alone(data)
    app, baseline, part = [], [], None
    for _ in range(runs):
        seconds, part = cpu_seconds(lambda: read_upload("IMG_0001.JPG", data))
        app.append(seconds)
        baseline.append(cpu_seconds(lambda: pillow_alone(data))[0])
    app_s, base_s = statistics.median(app), statistics.median(baseline)
    print(f"\npart sent: {part.mime}, {part.width}x{part.height}, {len(part.data):,} bytes "
          f"(target <= {TARGET_PART_BYTES:,}): {verdict(len(part.data) <= TARGET_PART_BYTES)}")
    print(f"read_upload: {app_s:.3f} s CPU, median of {runs} (min {min(app):.3f}, max "
          f"{max(app):.3f}; target <= {TARGET_CPU_SECONDS} s): "
          f"{verdict(app_s <= TARGET_CPU_SECONDS)}")
    print(f"baseline, Pillow decoding the file alone: {base_s:.3f} s CPU "
          f"(min {min(baseline):.3f}, max {max(baseline):.3f})")
    print(f"ratio read_upload / baseline: {app_s / base_s:.2f}x")


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        run(args.runs)
    except AttachmentRefused as exc:
        print(f"bench could not run: the photo was refused: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
