"""Verilog templates the engine is built of, so that every synthesis tool maps them alike: a
block RAM slice (:mod:`.block_ram`) and a registered DSP multiplier (:mod:`.dsp_multiply`)."""
