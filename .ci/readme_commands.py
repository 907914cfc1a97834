"""The README's two commands, as CI runs them: `python3 .ci/readme_commands.py first|test` prints one.

CI reads them from README.md instead of keeping a copy, so the commands a new user runs and the ones CI runs cannot
drift apart; tests/test_readme_commands.py checks that the README still has exactly these two and what each does.
Standard library only: it runs before any virtual environment exists."""

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(text: str) -> dict[str, str]:
    """The `bash` blocks of the README's "Two commands" section: the first installs and runs, the second tests."""
    section = re.search(r"^## Two commands\n(.*?)(?=^## )", text, re.S | re.M)
    if section is None:
        raise SystemExit("README.md has no '## Two commands' section")
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", section.group(1), re.S)]
    if len(blocks) != 2 or any("\n" in b for b in blocks):
        raise SystemExit(f"README.md: 'Two commands' must hold exactly two one-line bash blocks, found {len(blocks)}")
    return {"first": blocks[0], "test": blocks[1]}


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) == 2 else ""
    commands = readme_commands(README.read_text())
    if which not in commands:
        raise SystemExit(f"usage: readme_commands.py {'|'.join(commands)}")
    print(commands[which])
