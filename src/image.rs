//! Images from the command line: a built-in guest's name or a file, read up to a cap, and how to
//! take it (`--format`), shared by every command that boots one.
//! Teaches: a VMM's first input is an untrusted file; say what it is before running it.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use emulator::machine::loader::{
    load_flat, load_image_with_modules, BootMethod, BootModule, LoadedImage, FLAT_DEFAULT_LOAD_ADDR,
};
use emulator::Machine;

/// How to take an image file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageFormat {
    /// Detect a Multiboot kernel or a firmware ROM; else a flat binary if it could be one.
    #[default]
    Auto,
    /// A flat real-mode binary, loaded and started at 0x7C00, whatever the file looks like.
    Flat,
}

/// `--format`, one definition for every command that takes an image.
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct FormatArg {
    /// How to take IMAGE: `auto` detects its kind, `flat` loads it at 0x7C00 as it is.
    ///
    /// `auto`, in order: a Multiboot v1 kernel (the magic 0x1BADB002 with its 12-byte header in
    /// the first 8 KiB); a firmware ROM (named *.rom or *.bin, 64, 128, 192 or 256 KiB); else a
    /// flat real-mode binary loaded and started at 0000:7C00 as a boot sector is — but only if it
    /// could be one: not empty, not all zeros, not text, not compressed, not a DOS/PE executable
    /// or a Linux bzImage, and at most 0x98400 bytes (it must end below the video memory at
    /// 640 KiB). Any other file is refused with what it looks like. `flat` skips the detection.
    /// Either way a file larger than 512 MiB is refused.
    #[arg(long, value_enum, default_value_t = ImageFormat::Auto)]
    pub format: ImageFormat,
}

pub use emulator::machine::loader::MAX_IMAGE_BYTES;

/// Reads an image from a path, or returns a built-in guest by name (`None` = the demo). A file
/// wins over a built-in guest of the same name.
pub fn read_image(image: Option<&str>) -> Result<(String, Vec<u8>)> {
    let name = image.unwrap_or("demo");
    if let Some(g) = guests::by_name(name) {
        if image.is_none() || !Path::new(name).exists() {
            return Ok((g.file_name.to_string(), g.image.to_vec()));
        }
    }
    let path = Path::new(name);
    Ok((path.display().to_string(), read_capped(path)?))
}

/// Reads at most [`MAX_IMAGE_BYTES`] + 1 bytes of `path`; more is an error naming the file.
pub fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("reading image {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_IMAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading image {}", path.display()))?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        bail!(
            "{}: larger than {} MiB, which is more than any image vmscope loads",
            path.display(),
            MAX_IMAGE_BYTES >> 20
        );
    }
    Ok(bytes)
}

/// Loads an image as `format` says: detected (a Multiboot kernel started by `boot`), or flat.
pub fn load(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    cmdline: &str,
    boot: BootMethod,
    format: ImageFormat,
) -> Result<LoadedImage> {
    load_with_modules(machine, name, bytes, cmdline, boot, format, &[])
}

/// [`load`] with Multiboot boot modules (a flat binary refuses them).
pub fn load_with_modules(
    machine: &mut Machine,
    name: &str,
    bytes: &[u8],
    cmdline: &str,
    boot: BootMethod,
    format: ImageFormat,
    modules: &[BootModule],
) -> Result<LoadedImage> {
    Ok(match format {
        ImageFormat::Flat if !modules.is_empty() => {
            bail!(
                "{name}: --module needs a Multiboot kernel, and --format flat loads a flat binary"
            )
        }
        ImageFormat::Flat => load_flat(
            machine,
            name,
            bytes,
            FLAT_DEFAULT_LOAD_ADDR,
            Some(FLAT_DEFAULT_LOAD_ADDR),
        )?,
        ImageFormat::Auto => load_image_with_modules(
            machine,
            name,
            bytes,
            cmdline,
            boot,
            guests::FIRMWARE_ROM,
            modules,
        )?,
    })
}

/// Reads the modules `--module` names: each value is `FILE` or `FILE ARGS`; the kernel gets the
/// whole value as the module's string (as GRUB and QEMU's `-initrd` give it).
pub fn read_modules(values: &[String]) -> Result<Vec<BootModule>> {
    values
        .iter()
        .map(|value| {
            let file = value.split(' ').next().unwrap_or_default();
            if file.is_empty() {
                bail!("--module {value:?}: no file name");
            }
            let bytes =
                read_capped(Path::new(file)).with_context(|| format!("--module {value:?}"))?;
            Ok(BootModule {
                string: value.clone(),
                bytes,
            })
        })
        .collect()
}

// `--format`'s help states these numbers.
const _: () =
    assert!(emulator::machine::loader::FLAT_GUESS_LIMIT == 0x98400 && MAX_IMAGE_BYTES == 512 << 20);
