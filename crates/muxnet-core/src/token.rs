//! The token table: what the reactor owns, by [`Token`].
//!
//! A token is a slot index and that slot's generation. The generation
//! grows each time the slot is reused, so the token of a closed socket
//! never finds the socket that took its slot: it finds nothing
//! (`NotFound`, `EBADF` in Node), whoever still holds it — a handler that
//! runs later in the same batch, a destroyed JS object, a readiness the
//! backend reported before the close.

use std::collections::VecDeque;

/// Bits of a token's generation. With 32 bits of index, a token fits in
/// 53 bits: a JavaScript number holds it exactly.
const GENERATION_BITS: u32 = 21;
const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;

/// Identifies one socket of one reactor, for its whole life and never
/// after; reported back with each readiness and each event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(u64);

/// `Token(slot/generation)`.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}/{})", self.index(), self.generation())
    }
}

impl Token {
    fn new(index: u32, generation: u32) -> Token {
        Token((generation as u64 & GENERATION_MASK) << 32 | index as u64)
    }

    /// The slot this token names.
    pub fn index(self) -> u32 {
        self.0 as u32
    }

    /// Which use of the slot this token names (never 0).
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The token as one integer below 2^53 (what JavaScript holds).
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// A token from [`Token::to_bits`]; any other number is a token that
    /// names nothing.
    pub fn from_bits(bits: u64) -> Token {
        Token(bits)
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Slots per chunk of the table (a power of two).
const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Where slot `index` lies: its chunk, and its place in the chunk.
fn place(index: u32) -> (usize, usize) {
    ((index >> CHUNK_BITS) as usize, index as usize % CHUNK)
}

/// A slab whose handles are generational [`Token`]s.
///
/// Its slots come in fixed chunks, not one `Vec`: a doubling `Vec` holds
/// up to twice the slots in use (and copies them all as it grows), which
/// for 100 000 idle connections would be most of their cost in Rust.
pub(crate) struct Table<T> {
    chunks: Vec<Vec<Slot<T>>>,
    /// Slots made so far (in use or free).
    made: usize,
    /// Freed slots, oldest first: reuse is spread over the table, so a
    /// generation takes as long as possible to come round again.
    free: VecDeque<u32>,
    /// Slots freed since the last [`Table::release_held`], not reusable
    /// before it: the owner keeps its handles by slot, and a socket opened
    /// while it still reads the events of a socket just closed must not
    /// take that socket's slot (its handle, and its last events, would be
    /// lost).
    held: Vec<u32>,
    len: usize,
}

impl<T> Table<T> {
    pub fn new() -> Table<T> {
        Table { chunks: Vec::new(), made: 0, free: VecDeque::new(), held: Vec::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The token the next [`Table::insert`] will return.
    pub fn next_token(&self) -> Token {
        match self.free.front() {
            Some(&index) => {
                let (chunk, at) = place(index);
                Token::new(index, self.chunks[chunk][at].generation)
            }
            None => Token::new(self.made as u32, 1),
        }
    }

    /// Stores `value` under [`Table::next_token`].
    pub fn insert(&mut self, value: T) -> Token {
        let token = self.next_token();
        match self.free.pop_front() {
            Some(index) => {
                let (chunk, at) = place(index);
                self.chunks[chunk][at].value = Some(value);
            }
            None => {
                let (chunk, _) = place(token.index());
                if chunk == self.chunks.len() {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                self.chunks[chunk].push(Slot { generation: token.generation(), value: Some(value) });
                self.made += 1;
            }
        }
        self.len += 1;
        token
    }

    fn slot_at(&self, index: u32) -> Option<&Slot<T>> {
        let (chunk, at) = place(index);
        self.chunks.get(chunk)?.get(at)
    }

    fn slot_at_mut(&mut self, index: u32) -> Option<&mut Slot<T>> {
        let (chunk, at) = place(index);
        self.chunks.get_mut(chunk)?.get_mut(at)
    }

    fn slot(&self, token: Token) -> Option<&Slot<T>> {
        self.slot_at(token.index()).filter(|s| s.generation == token.generation())
    }

    pub fn get(&self, token: Token) -> Option<&T> {
        self.slot(token)?.value.as_ref()
    }

    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        self.slot_at_mut(token.index()).filter(|s| s.generation == token.generation())?.value.as_mut()
    }

    /// Takes the value out; the token (and every copy of it) names nothing
    /// from now on.
    pub fn remove(&mut self, token: Token) -> Option<T> {
        let slot = self.slot_at_mut(token.index()).filter(|s| s.generation == token.generation())?;
        let value = slot.value.take()?;
        // Skip 0 when the counter wraps: no token is all zeros in its high bits.
        slot.generation = (slot.generation as u64 % GENERATION_MASK + 1) as u32;
        self.held.push(token.index());
        self.len -= 1;
        Some(value)
    }

    /// Makes the slots freed so far reusable (the owner has seen every
    /// event of the sockets that had them).
    pub fn release_held(&mut self) {
        self.free.extend(self.held.drain(..));
    }

    /// Every stored value.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten().filter_map(|s| s.value.as_ref())
    }

    /// The tokens of every stored value.
    pub fn tokens(&self) -> Vec<Token> {
        self.chunks
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(index, s)| Token::new(index as u32, s.generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_waits_for_its_release() {
        let mut table = Table::new();
        let a = table.insert("a");
        assert_eq!(table.remove(a), Some("a"));
        let b = table.insert("b");
        assert_ne!(a.index(), b.index(), "held until released");
        table.release_held();
        assert_eq!(table.insert("c").index(), a.index());
    }

    #[test]
    fn a_freed_token_names_nothing_after_reuse() {
        let mut table = Table::new();
        let a = table.insert("a");
        assert_eq!(table.remove(a), Some("a"));
        table.release_held();
        let b = table.insert("b");
        assert_eq!(a.index(), b.index(), "the slot is reused");
        assert_ne!(a, b);
        assert_eq!(table.get(a), None);
        assert_eq!(table.remove(a), None);
        assert_eq!(table.get(b), Some(&"b"));
    }

    #[test]
    fn free_slots_are_reused_oldest_first() {
        let mut table = Table::new();
        let tokens: Vec<Token> = (0..3).map(|i| table.insert(i)).collect();
        table.remove(tokens[2]);
        table.remove(tokens[0]);
        table.release_held();
        assert_eq!(table.insert(7).index(), tokens[2].index());
        assert_eq!(table.insert(8).index(), tokens[0].index());
        assert_eq!(table.insert(9).index(), 3);
    }

    #[test]
    fn slots_past_a_chunk_are_found_by_their_tokens() {
        let mut table = Table::new();
        let tokens: Vec<Token> = (0..CHUNK * 2 + 3).map(|i| table.insert(i)).collect();
        assert!(tokens.iter().enumerate().all(|(i, &t)| table.get(t) == Some(&i)));
        let last = *tokens.last().unwrap();
        assert_eq!(table.remove(last), Some(CHUNK * 2 + 2));
        table.release_held();
        let again = table.insert(7);
        assert_eq!(again.index(), last.index());
        assert_eq!((table.get(last), table.get(again)), (None, Some(&7)));
        assert_eq!(table.tokens().len(), tokens.len());
        assert_eq!(table.values().count(), table.len());
    }

    #[test]
    fn generation_wraps_past_zero_and_fits_a_js_number() {
        let mut table = Table::new();
        let mut token = table.insert(());
        for _ in 0..(GENERATION_MASK + 2) {
            table.remove(token);
            table.release_held();
            token = table.insert(());
            assert_ne!(token.generation(), 0);
            assert!(token.to_bits() < 1 << 53);
        }
        assert_eq!(Token::from_bits(token.to_bits()), token);
    }
}
