//! Typed views of a store's columns, borrowed from the mapped bytes after validation.

/// One column read in place.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    /// The customer ids.
    U64(&'a [u64]),
    /// A numeric column.
    F32(&'a [f32]),
    /// A text attribute.
    Text(TextColumn<'a>),
}

/// A dictionary-encoded text column.
#[derive(Debug, Clone, Copy)]
pub struct TextColumn<'a> {
    /// One code per row; valid codes are `< dictionary.len()` (checked by `verify`).
    pub codes: &'a [u32],
    /// The distinct values.
    pub dictionary: Dictionary<'a>,
}

impl<'a> TextColumn<'a> {
    /// Row `row`'s text, or `None` if the row is out of range or its code is corrupt.
    pub fn value(&self, row: usize) -> Option<&'a str> {
        self.dictionary.get(*self.codes.get(row)?)
    }
}

/// The distinct strings of a text column, in code order.
#[derive(Debug, Clone, Copy)]
pub struct Dictionary<'a> {
    /// `len() + 1` offsets into `text`, validated at open: starting at 0, non-decreasing,
    /// ending at `text.len()`, each on a char boundary.
    pub(crate) offsets: &'a [u64],
    /// The concatenated strings.
    pub(crate) text: &'a str,
}

impl<'a> Dictionary<'a> {
    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when the column has no values at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The string with `code`, if the code is in range.
    pub fn get(&self, code: u32) -> Option<&'a str> {
        let code = code as usize;
        let start = *self.offsets.get(code)? as usize;
        let end = *self.offsets.get(code + 1)? as usize;
        self.text.get(start..end)
    }

    /// The code of `value`, if it occurs (a linear scan: dictionaries are small, and this runs
    /// once per filter, not per row).
    pub fn code_of(&self, value: &str) -> Option<u32> {
        self.iter()
            .position(|entry| entry == value)
            .map(|code| code as u32)
    }

    /// The code of `value` in a dictionary whose strings are in strictly increasing byte
    /// order (text customer ids), by binary search. On a dictionary out of order it may miss
    /// a string, never answer another one.
    pub fn sorted_position(&self, value: &str) -> Option<u32> {
        let (mut low, mut high) = (0u32, self.len() as u32);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.get(middle)?.cmp(value) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(middle),
            }
        }
        None
    }

    /// The strings in code order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len() as u32).filter_map(|code| self.get(code))
    }
}
