//! IP addresses and CIDR ranges (`ip('10.0.0.1')`, `cidr('10.0.0.0/8')`),
//! parsed as strictly as Kubernetes' CEL library parses them: no zones, no
//! IPv4-mapped IPv6 addresses, no leading zeros.

use std::any::Any;
use std::net::IpAddr;
use std::sync::LazyLock;

use cel::ExecutionError;
use cel::common::types::Type;
use cel::common::value::{StaticVal, Val};

pub static IP_TYPE: LazyLock<Type> = LazyLock::new(|| Type::new_opaque_type("net.IP"));
pub static CIDR_TYPE: LazyLock<Type> = LazyLock::new(|| Type::new_opaque_type("net.CIDR"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip(pub IpAddr);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Val for Ip {
    fn get_type(&self) -> &Type {
        &IP_TYPE
    }
    fn cel_type() -> &'static Type {
        &IP_TYPE
    }
    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Ip>() == Some(self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}
impl StaticVal for Ip {}

impl Val for Cidr {
    fn get_type(&self) -> &Type {
        &CIDR_TYPE
    }
    fn cel_type() -> &'static Type {
        &CIDR_TYPE
    }
    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Cidr>() == Some(self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}
impl StaticVal for Cidr {}

fn error(function: &str, message: String) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

impl Ip {
    pub fn parse(text: &str) -> Result<Ip, ExecutionError> {
        if text.contains('%') {
            return Err(error(
                "ip",
                format!("IP address '{text}' must not have a zone"),
            ));
        }
        let address: IpAddr = text
            .parse()
            .map_err(|_| error("ip", format!("IP address '{text}' is not valid")))?;
        if let IpAddr::V6(v6) = address
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(error(
                "ip",
                format!("IPv4-mapped IPv6 address '{text}' is not allowed"),
            ));
        }
        Ok(Ip(address))
    }

    pub fn family(&self) -> i64 {
        if self.0.is_ipv4() { 4 } else { 6 }
    }

    pub fn is_link_local_multicast(&self) -> bool {
        match self.0 {
            IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
            IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
        }
    }

    pub fn is_link_local_unicast(&self) -> bool {
        match self.0 {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        }
    }

    /// Go's `IsGlobalUnicast`: not unspecified, loopback, multicast, link-local
    /// unicast or the IPv4 broadcast address (private ranges count).
    pub fn is_global_unicast(&self) -> bool {
        !(self.0.is_unspecified()
            || self.0.is_loopback()
            || self.0.is_multicast()
            || self.is_link_local_unicast()
            || matches!(self.0, IpAddr::V4(v4) if v4.is_broadcast()))
    }
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, ExecutionError> {
        let invalid = || error("cidr", format!("network address '{text}' is not valid"));
        let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let address = Ip::parse(address).map_err(|_| invalid())?.0;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        if prefix.len() > 1 && prefix.starts_with('0') {
            return Err(invalid());
        }
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(invalid());
        }
        Ok(Cidr { address, prefix })
    }

    /// The range with every bit after the prefix cleared.
    pub fn masked(&self) -> Cidr {
        Cidr {
            address: mask(self.address, self.prefix),
            prefix: self.prefix,
        }
    }

    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.address.is_ipv4()
            && mask(ip, self.prefix) == mask(self.address, self.prefix)
    }

    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains_ip(other.address)
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_strictly() {
        assert!(Ip::parse("10.0.0.1").is_ok());
        assert!(Ip::parse("2001:db8::1").is_ok());
        for bad in ["010.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "10.0.0", ""] {
            assert!(Ip::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_contain_their_addresses() {
        let range = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(range.contains_ip(Ip::parse("10.1.200.3").unwrap().0));
        assert!(!range.contains_ip(Ip::parse("10.2.0.1").unwrap().0));
        assert!(range.contains_cidr(&Cidr::parse("10.1.2.0/24").unwrap()));
        assert!(!range.contains_cidr(&Cidr::parse("10.0.0.0/8").unwrap()));
        assert_eq!(
            Cidr::parse("192.168.1.7/24").unwrap().masked().to_string(),
            "192.168.1.0/24"
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
    }
}
