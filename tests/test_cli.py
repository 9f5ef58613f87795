import subprocess
import sys

import pytest

from tinyreason.cli import COMMANDS, main


def test_usage_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for group, cmds in COMMANDS.items():
        for name in cmds:
            assert f"{group} {name}" in out


def test_unknown_group_and_command_exit_2(capsys):
    assert main(["golf"]) == 2
    assert main(["chess", "fly"]) == 2
    err = capsys.readouterr().err
    assert "unknown command group 'golf'" in err and "unknown command 'chess fly'" in err


@pytest.mark.slow  # imports every command module: torch, transformers, … (seconds)
def test_every_command_module_has_main():
    import importlib

    for cmds in COMMANDS.values():
        for module, _ in cmds.values():
            assert callable(importlib.import_module(module).main), module


def test_console_script_exit_code_and_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "tinyreason.cli", "hrm", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
