# demo.S — the demo `vmscope` runs when given no image: hello64 with a running commentary.
# Teaches: the whole trip of a 64-bit kernel, narrated step by step, from the Multiboot
# loader's 32-bit protected mode to ring 3 and back; it ends with CLI; HLT (a clean halt)
# instead of the debug-exit port. The code is hello64.S; DEMO switches the narration on.

.set DEMO, 1
    .include "hello64.S"
