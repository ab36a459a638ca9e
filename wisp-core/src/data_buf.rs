//! [`DataBuf`]: a payload written behind room for its DATA packet's header, so that sending it
//! costs no copy.
//!
//! A stream's `Sink<Bytes>` must copy each payload into a new buffer behind the 5-byte packet
//! header, because a WebSocket message is one contiguous buffer. When the payload comes from a
//! socket read, the copy is avoidable: read into a [`DataBuf`]'s buffer (for example with
//! `AsyncReadExt::read_buf(data_buf.buf_mut())`) and send the `DataBuf`; the header is written
//! into the room left in front and the buffer goes to the WebSocket as it is.

use bytes::{BufMut, Bytes, BytesMut};

use crate::packet::{self, HEADER_LEN, MAX_DATA_PAYLOAD};

/// A DATA payload with room for the packet header in front of it.
///
/// ```
/// use bytes::BufMut;
/// use wisp_core::DataBuf;
///
/// let mut buf = DataBuf::with_capacity(16);
/// buf.buf_mut().put_slice(b"hello");
/// assert_eq!(buf.payload(), b"hello");
/// assert_eq!(buf.len(), 5);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DataBuf {
    /// The first [`DataBuf::HEADER_ROOM`] bytes are the room for the header; the payload
    /// follows. Through `buf_mut` the caller may shorten it below that; every method treats
    /// a missing room as an empty payload.
    buf: BytesMut,
}

impl DataBuf {
    /// Bytes kept in front of the payload for the packet header.
    pub const HEADER_ROOM: usize = HEADER_LEN;

    /// An empty payload with room for `payload_capacity` bytes before it grows. Sizes up to
    /// [`MAX_DATA_PAYLOAD`] go out as one packet without a copy.
    pub fn with_capacity(payload_capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + payload_capacity);
        buf.put_bytes(0, HEADER_LEN);
        Self { buf }
    }

    /// The whole buffer: [`HEADER_ROOM`](Self::HEADER_ROOM) bytes of room for the header,
    /// then the payload. Append the payload to it (`put_slice`, `read_buf`, ...). What is
    /// in the room is overwritten when the packet is built.
    pub fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn room(&self) -> usize {
        HEADER_LEN.min(self.buf.len())
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.buf[self.room()..]
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let room = self.room();
        &mut self.buf[room..]
    }

    /// Payload bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len() - self.room()
    }

    /// Whether no payload has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the payload, keeping the room for the header and the capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.put_bytes(0, HEADER_LEN);
    }

    /// The payload alone, without a copy.
    pub fn into_payload(mut self) -> Bytes {
        let room = self.room();
        self.buf.split_off(room).freeze()
    }

    /// The DATA packet for `stream_id`, or `None` when the payload is over
    /// [`MAX_DATA_PAYLOAD`] and must be split. The header goes into the room in front; the
    /// payload is not copied.
    pub(crate) fn into_packet(mut self, stream_id: u32) -> Result<Bytes, Self> {
        if self.len() > MAX_DATA_PAYLOAD {
            return Err(self);
        }
        if self.buf.len() < HEADER_LEN {
            self.clear();
        }
        self.buf[0] = packet::DATA;
        self.buf[1..HEADER_LEN].copy_from_slice(&stream_id.to_le_bytes());
        Ok(self.buf.freeze())
    }
}

impl std::fmt::Debug for DataBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataBuf").field("len", &self.len()).finish()
    }
}

impl From<&[u8]> for DataBuf {
    fn from(payload: &[u8]) -> Self {
        let mut buf = Self::with_capacity(payload.len());
        buf.buf.put_slice(payload);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Packet, PacketType};

    #[test]
    fn the_packet_is_the_header_then_the_payload_in_the_same_allocation() {
        let mut buf = DataBuf::with_capacity(1000);
        buf.buf_mut().put_slice(&[7u8; 1000]);
        let payload_at = buf.payload().as_ptr();
        let packet = buf.into_packet(0x0102_0304).expect("fits one packet");
        assert_eq!(&packet[..5], &[packet::DATA, 4, 3, 2, 1]);
        assert_eq!(
            packet[5..].as_ptr(),
            payload_at,
            "the payload was not copied"
        );
        let decoded = Packet::decode(packet).expect("a valid packet");
        assert_eq!(decoded.stream_id, 0x0102_0304);
        assert!(matches!(decoded.packet_type, PacketType::Data(d) if d[..] == [7u8; 1000]));
    }

    #[test]
    fn growing_past_the_capacity_keeps_the_header_room() {
        let mut buf = DataBuf::with_capacity(2);
        buf.buf_mut().put_slice(b"abcdefgh");
        assert_eq!(buf.payload(), b"abcdefgh");
        assert_eq!(buf.len(), 8);
        buf.clear();
        assert!(buf.is_empty());
        buf.buf_mut().put_slice(b"xy");
        assert_eq!(buf.clone().into_payload(), Bytes::from_static(b"xy"));
        let packet = buf.into_packet(9).expect("fits");
        assert_eq!(&packet[..], &[packet::DATA, 9, 0, 0, 0, b'x', b'y']);
    }

    #[test]
    fn a_buffer_cut_into_its_header_room_is_an_empty_payload() {
        let mut buf = DataBuf::with_capacity(8);
        buf.buf_mut().truncate(2);
        assert!(buf.is_empty());
        assert_eq!(buf.payload(), b"");
        let packet = buf.into_packet(3).expect("fits");
        assert_eq!(&packet[..], &[packet::DATA, 3, 0, 0, 0]);
    }

    #[test]
    fn an_oversized_payload_is_handed_back() {
        let buf = DataBuf::from(&vec![1u8; MAX_DATA_PAYLOAD + 1][..]);
        let back = buf.into_packet(1).expect_err("too large for one packet");
        assert_eq!(back.len(), MAX_DATA_PAYLOAD + 1);
    }
}
