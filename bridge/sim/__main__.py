"""``python -m bridge.sim``: the simulator alone, without the other commands' imports."""

from bridge.commands.sim_cmd import sim_command

if __name__ == "__main__":
    sim_command(prog_name="vibes-bridge sim")
