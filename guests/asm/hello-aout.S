# hello-aout.S — hello32 again, linked as a flat binary with the Multiboot "a.out kludge".
# Teaches: an image without ELF headers can still be booted if its Multiboot header says
# where it goes (load_addr, load_end_addr, bss_end_addr) and where to start (entry_addr).
# build.rs links this one with `--oformat binary`; the code itself is hello32.S.

.set AOUT_KLUDGE, 1
    .include "hello32.S"
