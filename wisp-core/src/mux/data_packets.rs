//! One write to a stream, encoded as DATA packets by the writer before it takes the connection's
//! lock, so that the copy into the packet (when there is one) never holds up the other streams.

use bytes::Bytes;

use crate::data_buf::DataBuf;
use crate::packet::{self, MAX_DATA_PAYLOAD};
use crate::WispError;

/// The DATA packets of one write, in order.
pub(crate) enum DataPackets {
    None,
    One(Bytes),
    Many(std::vec::IntoIter<Bytes>),
}

impl DataPackets {
    /// Copies `payload` into packets for `stream_id`. A TCP payload is split at
    /// [`MAX_DATA_PAYLOAD`] and an empty one sends nothing; a datagram is one packet or an error.
    pub(crate) fn copy(stream_id: u32, payload: &[u8], datagram: bool) -> Result<Self, WispError> {
        if datagram {
            if payload.len() > MAX_DATA_PAYLOAD {
                return Err(WispError::DatagramTooLarge(payload.len()));
            }
            return Ok(Self::One(packet::encode_data(stream_id, payload)));
        }
        Ok(match payload.len() {
            0 => Self::None,
            n if n <= MAX_DATA_PAYLOAD => Self::One(packet::encode_data(stream_id, payload)),
            _ => Self::Many(
                payload
                    .chunks(MAX_DATA_PAYLOAD)
                    .map(|chunk| packet::encode_data(stream_id, chunk))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
        })
    }

    /// Turns `buf` into its packet without a copy; only a payload too large for one packet is
    /// copied into several.
    pub(crate) fn framed(stream_id: u32, buf: DataBuf, datagram: bool) -> Result<Self, WispError> {
        if buf.is_empty() && !datagram {
            return Ok(Self::None);
        }
        match buf.into_packet(stream_id) {
            Ok(packet) => Ok(Self::One(packet)),
            Err(buf) => Self::copy(stream_id, buf.payload(), datagram),
        }
    }
}

impl Iterator for DataPackets {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        match std::mem::replace(self, Self::None) {
            Self::None => None,
            Self::One(b) => Some(b),
            Self::Many(mut it) => {
                let b = it.next();
                *self = Self::Many(it);
                b
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn lens(p: DataPackets) -> Vec<usize> {
        p.map(|b| b.len()).collect()
    }

    #[test]
    fn tcp_payloads_split_at_the_largest_packet_and_empty_ones_send_nothing() {
        let big = vec![0u8; 2 * MAX_DATA_PAYLOAD + 1];
        let full = packet::HEADER_LEN + MAX_DATA_PAYLOAD;
        assert_eq!(
            lens(DataPackets::copy(1, &big, false).unwrap()),
            [full, full, packet::HEADER_LEN + 1]
        );
        assert!(lens(DataPackets::copy(1, &[], false).unwrap()).is_empty());
        assert!(lens(DataPackets::framed(1, DataBuf::with_capacity(8), false).unwrap()).is_empty());
        let mut buf = DataBuf::with_capacity(0);
        buf.buf_mut().put_slice(&big);
        assert_eq!(
            lens(DataPackets::framed(1, buf, false).unwrap()),
            [full, full, packet::HEADER_LEN + 1]
        );
    }

    #[test]
    fn a_datagram_is_one_packet_even_when_empty_and_never_split() {
        assert_eq!(lens(DataPackets::copy(1, &[], true).unwrap()), [5]);
        assert_eq!(
            lens(DataPackets::framed(1, DataBuf::with_capacity(0), true).unwrap()),
            [5]
        );
        let big = vec![0u8; MAX_DATA_PAYLOAD + 1];
        assert!(matches!(
            DataPackets::copy(1, &big, true),
            Err(WispError::DatagramTooLarge(n)) if n == big.len()
        ));
        assert!(matches!(
            DataPackets::framed(1, DataBuf::from(&big[..]), true),
            Err(WispError::DatagramTooLarge(_))
        ));
    }
}
