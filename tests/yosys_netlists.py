"""Small designs through ``a2q synth``'s Yosys script, for tests of what synthesis keeps."""

import json
from pathlib import Path

from amaranth.back import verilog

from a2q.hw.fpga.synthesis import synthesize


def synthesized(folder: Path, component, name: str, extra: dict[str, str] | None = None) -> dict:
    """``component`` (as module ``name``, with the ``extra`` sources: file name -> text)
    through ``a2q synth``'s ECP5 Yosys script in ``folder``, without place and route: the
    module of the netlist (``cells``, ``netnames``)."""
    rtl = folder / "rtl"
    rtl.mkdir(parents=True)
    sources = {f"{name}.v": verilog.convert(component, name=name), **(extra or {})}
    for file, text in sources.items():
        (rtl / file).write_text(text)
    (rtl / "filelist.f").write_text("".join(f"{file}\n" for file in sources))
    (rtl / "params.json").write_text(json.dumps({"module": name}))
    synthesize(rtl, "ecp5", folder / "synth", device="25k", place_and_route=False)
    return json.loads((folder / "synth" / "netlist.json").read_text())["modules"][name]
