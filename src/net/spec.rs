//! `vmscope net --vm IMAGE[,key=value…]`: what one guest of a network run is — its image,
//! engine, NIC, MAC, switch port and command line — parsed from one argument.
//! Teaches: a network of VMs is a list of machines plus the wiring between them.

use std::fmt;
use std::str::FromStr;

use devices::net::switch::{PortMode, VlanSet};
use devices::net::MacAddr;
use devices::placement::NicModel;

use crate::EngineChoice;

/// One `--vm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// A path or a built-in guest's name.
    pub image: String,
    pub name: Option<String>,
    pub engine: EngineChoice,
    pub nic: NicModel,
    /// Default: `MacAddr::vmscope(index + 1)`.
    pub mac: Option<MacAddr>,
    /// The switch port: access VLAN 1 unless `vlan=` or `trunk=` says otherwise.
    pub port: PortMode,
    pub memory: u64,
    /// Everything after `cmdline=`, commas included.
    pub cmdline: String,
}

pub const SPEC_HELP: &str = "IMAGE[,name=N][,engine=interp|bt|kvm][,nic=virtio|virtio-mmio|rtl8139][,mac=MAC][,vlan=ID|,trunk=IDS[:native=ID]][,memory=SIZE][,cmdline=TEXT (last: may hold commas)]";

pub fn parse_nic(s: &str) -> Result<NicModel, String> {
    match s {
        "virtio" | "virtio-pci" | "virtio-net" => Ok(NicModel::VirtioPci),
        "virtio-mmio" => Ok(NicModel::VirtioMmio),
        "rtl8139" | "emulated" => Ok(NicModel::Rtl8139),
        _ => Err(format!(
            "nic={s}: expected virtio (virtio-net on PCI), virtio-mmio or rtl8139 (emulated)"
        )),
    }
}

fn parse_vid(s: &str) -> Result<u16, String> {
    let vid: u16 = s
        .parse()
        .map_err(|_| format!("VLAN ID {s:?} is not a number"))?;
    PortMode::Access(vid).validate().map(|_| vid)
}

/// `trunk=10+20+30` or `trunk=10-20` or `trunk=all`, optionally `:native=N`.
fn parse_trunk(s: &str) -> Result<PortMode, String> {
    let (set, native) = match s.split_once(":native=") {
        Some((set, n)) => (set, Some(parse_vid(n)?)),
        None => (s, None),
    };
    let allowed = if set == "all" {
        VlanSet::All
    } else if let Some((a, b)) = set.split_once('-') {
        VlanSet::Range(parse_vid(a)?, parse_vid(b)?)
    } else {
        VlanSet::List(set.split('+').map(parse_vid).collect::<Result<_, _>>()?)
    };
    let mode = PortMode::Trunk { native, allowed };
    mode.validate()?;
    Ok(mode)
}

impl FromStr for VmSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (head, cmdline) = match s.find(",cmdline=") {
            Some(i) => (&s[..i], s[i + ",cmdline=".len()..].to_string()),
            None => (s, String::new()),
        };
        let mut parts = head.split(',');
        let image = parts.next().unwrap_or_default().to_string();
        if image.is_empty() {
            return Err(format!("--vm needs an image first: {SPEC_HELP}"));
        }
        let mut spec = VmSpec {
            image,
            name: None,
            engine: EngineChoice::Interp,
            nic: NicModel::VirtioPci,
            mac: None,
            port: PortMode::Access(1),
            memory: 64 << 20,
            cmdline,
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("--vm option {part:?} is not key=value: {SPEC_HELP}"))?;
            match key {
                "name" => spec.name = Some(value.to_string()),
                "engine" => {
                    spec.engine = <EngineChoice as clap::ValueEnum>::from_str(value, true)
                        .map_err(|_| format!("engine={value}: expected interp, bt, kvm or auto"))?
                }
                "nic" => spec.nic = parse_nic(value)?,
                "mac" => {
                    let mac = MacAddr::parse(value)
                        .ok_or_else(|| format!("mac={value}: expected aa:bb:cc:dd:ee:ff"))?;
                    if mac.is_group() {
                        return Err(format!("mac={value} is a group address (lowest bit of the first byte set); a NIC needs a unicast one"));
                    }
                    spec.mac = Some(mac);
                }
                "vlan" => spec.port = PortMode::Access(parse_vid(value)?),
                "trunk" => spec.port = parse_trunk(value)?,
                "memory" => {
                    spec.memory = crate::sizes::parse_memory_size(value)
                        .map_err(|e| format!("memory={value}: {e}"))?
                }
                _ => return Err(format!("--vm: unknown option {key:?}: {SPEC_HELP}")),
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for VmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {} with {}",
            self.image,
            self.engine,
            self.nic.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_parses_and_the_command_line_keeps_its_commas() {
        let s: VmSpec = "kernel,name=a,engine=bt,nic=rtl8139,mac=02:00:00:00:00:09,vlan=20,memory=32M,cmdline=workloads=ping:5,udp-send:3 ip=10.0.0.1"
            .parse()
            .unwrap();
        assert_eq!(s.image, "kernel");
        assert_eq!(s.name.as_deref(), Some("a"));
        assert_eq!(s.engine, EngineChoice::Bt);
        assert_eq!(s.nic, NicModel::Rtl8139);
        assert_eq!(s.mac, MacAddr::parse("02:00:00:00:00:09"));
        assert_eq!(s.port, PortMode::Access(20));
        assert_eq!(s.memory, 32 << 20);
        assert_eq!(s.cmdline, "workloads=ping:5,udp-send:3 ip=10.0.0.1");
    }

    #[test]
    fn defaults_and_trunks() {
        let s: VmSpec = "kernel".parse().unwrap();
        assert_eq!(
            (s.engine, s.nic, s.port.clone()),
            (
                EngineChoice::Interp,
                NicModel::VirtioPci,
                PortMode::Access(1)
            )
        );
        let t: VmSpec = "k,trunk=10+20:native=1".parse().unwrap();
        assert_eq!(
            t.port,
            PortMode::Trunk {
                native: Some(1),
                allowed: VlanSet::List(vec![10, 20])
            }
        );
        let r: VmSpec = "k,trunk=100-200".parse().unwrap();
        assert_eq!(
            r.port,
            PortMode::Trunk {
                native: None,
                allowed: VlanSet::Range(100, 200)
            }
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (bad, says) in [
            ("", "needs an image"),
            ("k,engine=qemu", "engine=qemu"),
            ("k,nic=e1000", "nic=e1000"),
            ("k,mac=01:00:5e:00:00:01", "group address"),
            ("k,mac=zz", "mac=zz"),
            ("k,vlan=4095", "4095"),
            ("k,vlan=x", "not a number"),
            ("k,trunk=20-10", "empty VLAN range"),
            ("k,speed=10", "unknown option"),
            ("k,bt", "not key=value"),
        ] {
            let e = bad.parse::<VmSpec>().unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
