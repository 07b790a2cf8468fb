//! Guests that once made the binary translator disagree with the interpreter, each kept as the
//! smallest image that showed it. `support::run` runs both and compares everything.
//! Teaches: every path that runs guest code must see the guest's writes to code.

mod support;

use emulator::Exit;

/// Two passes over `mov ss, dx; inc byte [bx]; mov al, 1 …`: on the second the INC, which runs
/// alone in the MOV SS interrupt shadow (through the interpreter), rewrites the immediate of the
/// `mov al, 1` right after it. bt once ran its stale block and wrote 1 instead of 2.
#[test]
fn a_code_write_from_an_instruction_in_the_mov_ss_shadow_reaches_the_translation() {
    let image = [
        0x31, 0xD2, // xor dx, dx
        0x31, 0xC9, // xor cx, cx
        0xBB, 0x00, 0x06, // mov bx, 0x600  (patched to 0x7C0C below)
        0x8E, 0xD2, // loop: mov ss, dx
        0xFE, 0x07, // inc byte [bx]
        0xB0, 0x01, // mov al, 1        (the immediate at 0x7C0C)
        0xBB, 0x0C, 0x7C, // mov bx, 0x7C0C
        0x41, // inc cx
        0x83, 0xF9, 0x02, // cmp cx, 2
        0x75, 0xF1, // jne loop
        0xE6, 0xF4, // out 0xF4, al
        0xF4, // hlt
    ];
    let mut m = support::real_mode(&image);
    assert_eq!(
        support::run(&mut m),
        Exit::DebugExit {
            value: 2,
            status: 5
        }
    );
}
