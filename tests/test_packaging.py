"""The package as users get it: the wheel carries the prompt templates; both entry points run."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_prompt_templates(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("promptrec-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for template in ("item_features", "user_profile", "rerank", "explain"):
        assert f"promptrec/_prompts/{template}.md" in names
    assert "promptrec/cli/app.py" in names
    assert "promptrec/wordlists/offensive.txt" in names  # the quality gate's word list


def test_python_dash_m_and_console_script():
    for command in ([sys.executable, "-m", "promptrec", "--help"], [str(Path(sys.executable).parent / "promptrec"), "--help"]):
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        assert "index" in out and "recommend" in out and "chat" in out
