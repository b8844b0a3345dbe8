"""An in-tree PEP 517 backend (no setuptools, no index): the wheel's ``toyext`` module records whether
``torch`` was importable while it was built, and the text of ``vendor/data.txt`` when a submodule
put that file there."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import zipfile

NAME, VERSION = "toyext", "1.0"


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory: str, config_settings: object = None, metadata_directory: object = None) -> str:
    seen = importlib.util.find_spec("torch") is not None
    vendored = ""
    if os.path.exists(os.path.join("vendor", "data.txt")):
        with open(os.path.join("vendor", "data.txt")) as f:
            vendored = f.read().strip()
    info = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}/__init__.py": f"BUILT_SEEING_TORCH = {seen!r}\nVENDORED = {vendored!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: toyext\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(text)},{len(text.encode())}" for path, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return name
