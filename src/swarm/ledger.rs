//! The ledger of a connection's request numbers: what became of each (for late, duplicate and
//! unmatched replies), in a few bits a number, folded to a word per chunk once settled.

use std::collections::VecDeque;

/// What became of a sequence number of this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mark {
    /// Not a request of this connection (another send, or nothing sent).
    Other = 0,
    /// In the waiting table.
    Waiting = 1,
    /// Answered, or answered late already: a further reply is a duplicate.
    Settled = 2,
    /// Timed out with no reply yet: a reply is late.
    TimedOut = 3,
}

impl Mark {
    fn of(bits: u64) -> Mark {
        match bits & 3 {
            0 => Mark::Other,
            1 => Mark::Waiting,
            2 => Mark::Settled,
            _ => Mark::TimedOut,
        }
    }
}

/// What became of each sequence number, in `bits` bits a number: two for its `Mark`, and for a
/// scenario with named steps, the number of its step's name (so that a late reply counts for
/// its name). 64 words to a chunk (2 048 numbers at two bits). A chunk whose words are all the
/// same once its numbers are settled (requests answered in order, a server that answered none
/// of them, a program that alternates requests and other sends) is kept as that one word: a
/// long connection costs a word per chunk, and at worst `bits` bits per number (names are
/// kept only for numbers that timed out, so settled chunks fold whatever their names). Lookups
/// and changes are O(1).
#[derive(Debug)]
pub struct Ledger {
    /// Index (number / per chunk) of `chunks[0]`.
    first: u64,
    chunks: VecDeque<Chunk>,
    /// Chunks before this one (counted from `first`) were looked at once to be made `Same`.
    sealed: usize,
    /// Bits per number: 2, 4, 8 or 16.
    bits: u32,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            first: 0,
            chunks: VecDeque::new(),
            sealed: 0,
            bits: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    /// Every word is this one.
    Same(u64),
    Words(Box<[u64; WORDS]>),
}

const WORDS: usize = 64;

impl Ledger {
    /// A ledger that also keeps a name number (1..=names; 0 for none) with each number.
    pub fn with_names(names: usize) -> Self {
        let need = 2 + usize::BITS - names.leading_zeros();
        Ledger {
            bits: [2, 4, 8, 16].into_iter().find(|b| *b >= need).unwrap_or(16),
            ..Ledger::default()
        }
    }

    /// log2 of the numbers in a word (shifts, not divisions: this is on every request's path).
    fn word_shift(&self) -> u32 {
        6 - self.bits.trailing_zeros()
    }

    fn per_word(&self) -> u64 {
        1 << self.word_shift()
    }

    fn per_chunk(&self) -> u64 {
        1 << (self.word_shift() + WORDS.trailing_zeros())
    }

    /// (chunk, word in it, shift in the word) of `seq`.
    fn place(&self, seq: u64) -> (u64, usize, u64) {
        let ws = self.word_shift();
        let chunk = seq >> (ws + WORDS.trailing_zeros());
        let word = ((seq >> ws) & (WORDS as u64 - 1)) as usize;
        (chunk, word, u64::from(self.bits) * (seq & (self.per_word() - 1)))
    }

    fn mask(&self) -> u64 {
        (1 << self.bits) - 1
    }

    /// The bits of `seq`: its mark, and above them its name.
    fn entry(&self, seq: u64) -> u64 {
        let (c, w, shift) = self.place(seq);
        let Some(chunk) = c
            .checked_sub(self.first)
            .and_then(|i| self.chunks.get(i as usize))
        else {
            return 0;
        };
        let word = match chunk {
            Chunk::Same(word) => *word,
            Chunk::Words(words) => words[w],
        };
        (word >> shift) & self.mask()
    }

    pub fn get(&self, seq: u64) -> Mark {
        Mark::of(self.entry(seq))
    }

    /// The name number kept with `seq` (0: none).
    pub fn name(&self, seq: u64) -> u16 {
        (self.entry(seq) >> 2) as u16
    }

    /// Changes the mark of `seq`, keeping its name.
    pub fn set(&mut self, seq: u64, mark: Mark) {
        let name = self.entry(seq) >> 2;
        self.put(seq, (name << 2) | mark as u64);
    }

    /// Sets the mark and the name of `seq`.
    pub fn set_named(&mut self, seq: u64, mark: Mark, name: u16) {
        self.put(seq, ((u64::from(name) << 2) | mark as u64) & self.mask());
    }

    fn put(&mut self, seq: u64, entry: u64) {
        let mask = self.mask();
        let (c, w, shift) = self.place(seq);
        let i = self.cover(c);
        let change = |word: u64| (word & !(mask << shift)) | (entry << shift);
        let chunk = &mut self.chunks[i];
        match chunk {
            Chunk::Same(word) if change(*word) == *word => {}
            Chunk::Same(word) => {
                let mut words = Box::new([*word; WORDS]);
                words[w] = change(words[w]);
                *chunk = Chunk::Words(words);
            }
            Chunk::Words(words) => words[w] = change(words[w]),
        }
    }

    /// Makes sure chunk `c` exists (new ones are all `Other`); gives its place in `chunks`.
    fn cover(&mut self, c: u64) -> usize {
        if self.chunks.is_empty() {
            self.first = c;
        }
        while c < self.first {
            self.chunks.push_front(Chunk::Same(0));
            self.first -= 1;
            self.sealed += 1;
        }
        let i = (c - self.first) as usize;
        while self.chunks.len() <= i {
            self.chunks.push_back(Chunk::Same(0));
        }
        i
    }

    /// Every number below `seq` is settled or timed out: their chunks take one word when all of
    /// theirs are the same (each chunk is looked at once; a late reply may unpack one again).
    /// A settled number's name is not needed any more: it is cleared first, so that names do
    /// not keep a chunk apart.
    pub fn seal_below(&mut self, seq: u64) {
        let end = (seq / self.per_chunk())
            .saturating_sub(self.first)
            .min(self.chunks.len() as u64) as usize;
        let (bits, per_word, mask) = (u64::from(self.bits), self.per_word(), self.mask());
        while self.sealed < end {
            let chunk = &mut self.chunks[self.sealed];
            if let Chunk::Words(words) = chunk {
                if bits > 2 {
                    for word in words.iter_mut() {
                        for k in 0..per_word {
                            let e = (*word >> (bits * k)) & mask;
                            if Mark::of(e) != Mark::TimedOut {
                                *word &= !((mask & !3) << (bits * k));
                            }
                        }
                    }
                }
                if words.iter().all(|w| *w == words[0]) {
                    *chunk = Chunk::Same(words[0]);
                }
            }
            self.sealed += 1;
        }
    }

    /// Bytes held, for tests.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| {
                16 + if matches!(c, Chunk::Words(_)) {
                    8 * WORDS
                } else {
                    0
                }
            })
            .sum()
    }
}
