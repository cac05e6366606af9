//! HMAC-SHA256 and a comparison that takes the same time wherever two tags differ: what
//! authenticates the compile cache's entries and a manager's answer to `ctl`'s challenge.

use sha2::{Digest, Sha256};

/// Bytes of a tag.
pub const TAG_LEN: usize = 32;

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under `key` (at most one 64-byte
/// block long: the keys here are 32 random bytes).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
    const BLOCK: usize = 64;
    assert!(key.len() <= BLOCK, "an HMAC key longer than a block");
    let mut padded = [0u8; BLOCK];
    padded[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = Sha256::new();
    inner.update(&ipad);
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(&opad);
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Equal, in time that does not depend on where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231, test case 2.
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            crate::private_files::hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(same(&tag, &tag) && !same(&tag, &[0u8; TAG_LEN]) && !same(&tag, &tag[1..]));
    }
}
