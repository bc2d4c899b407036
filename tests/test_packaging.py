"""The wheel works on its own: shipped models as package data, no checkout layout, optional extras."""

import email
import subprocess
import sys
import zipfile

import pytest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(root)], check=True, capture_output=True, timeout=300, cwd=out)
    (whl,) = out.glob("framing-*.whl")
    return whl


def test_wheel_holds_models_license_and_light_core_dependencies(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    for model in ("accurate", "fast"):
        assert f"framing/models/{model}/framing.json" in names
        assert f"framing/models/{model}/adapter.safetensors" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    requires = meta.get_all("Requires-Dist")
    core = {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in requires if "extra ==" not in r}
    assert {"torch", "transformers", "scipy", "safetensors"} <= core
    assert not core & {"peft", "datasets", "matplotlib", "ray"}, core  # inference users do not get them
    extras = set(meta.get_all("Provides-Extra"))
    assert {"train", "report", "ray"} <= extras


def test_installed_wheel_loads_its_model_outside_any_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    script = (
        "import framing, framing.paths as p\n"
        f"assert framing.__file__.startswith({str(site)!r}), framing.__file__\n"
        "assert p.checkout_root() is None\n"
        f"assert str(p.models_dir()).startswith({str(site)!r})\n"
        "assert p.shipped_models() == ['accurate', 'fast', 'minilm-lora'], p.shipped_models()\n"
        "from framing import Classifier\n"
        "clf = Classifier.load('fast', device='cpu')\n"
        "print(clf.predict('The ministry rejected the report as a fabrication.'))\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TRANSFORMERS_VERBOSITY": "error"}
    import os

    for key in ("FRAMING_CACHE", "XDG_CACHE_HOME"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.setdefault("FRAMING_CACHE", os.path.expanduser("~/.cache/framing"))
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() in ("allegation", "denial", "justification", "other")


def test_missing_extra_names_the_pip_command(monkeypatch):
    import framing.extras

    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(framing.extras.importlib, "import_module", missing)
    with pytest.raises(ModuleNotFoundError, match=r"framing report's plots needs matplotlib.*pip install 'framing\[report\]'"):
        framing.extras.need("matplotlib", "framing report's plots")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'framing\[train\]'"):
        framing.extras.need("peft", "LoRA training")
