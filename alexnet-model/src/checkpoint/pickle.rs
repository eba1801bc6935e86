//! Pickle safety: a `.pth` file is a Python pickle, which may ask to import and call any
//! Python function. Rust never runs Python, but such a file is refused anyway, before
//! burn-store reads it: every pickle in the file is walked opcode by opcode and each global it
//! names (`GLOBAL`, `INST`, `STACK_GLOBAL`) must be on the tensor-rebuilding allow-list
//! ([`allowed_global`]). Unknown opcodes, extension-registry codes and `STACK_GLOBAL`s whose
//! names cannot be resolved are refused too. The walk also collects the storages the pickle
//! refers to, so that their sizes can be checked against the file.

use crate::error::AlexNetError;

/// Why a pickle is not accepted.
#[derive(Debug)]
pub(super) enum PickleError {
    /// It asks for something off the allow-list, or for machinery torch.save never emits.
    Refused(String),
    /// It is truncated or malformed.
    Malformed(String),
}

impl From<String> for PickleError {
    fn from(message: String) -> Self {
        Self::Malformed(message)
    }
}

impl From<&str> for PickleError {
    fn from(message: &str) -> Self {
        Self::Malformed(message.to_string())
    }
}

impl PickleError {
    /// The model crate's error, `context` (the pickle's name) first.
    pub(super) fn in_pickle(self, context: &str) -> AlexNetError {
        match self {
            Self::Refused(message) => AlexNetError::UnsafePickle(format!("{context}{message}")),
            Self::Malformed(message) => AlexNetError::Weights(format!("{context}{message}")),
        }
    }
}

/// Globals a PyTorch state dict may name: the containers and the tensor-rebuilding functions
/// `torch.save` emits, nothing that runs code of its own.
fn allowed_global(module: &str, name: &str) -> bool {
    const STORAGES: [&str; 12] = [
        "FloatStorage",
        "DoubleStorage",
        "HalfStorage",
        "BFloat16Storage",
        "LongStorage",
        "IntStorage",
        "ShortStorage",
        "CharStorage",
        "ByteStorage",
        "BoolStorage",
        "UntypedStorage",
        "TypedStorage",
    ];
    match module {
        "collections" => name == "OrderedDict",
        "torch._utils" => matches!(
            name,
            "_rebuild_tensor"
                | "_rebuild_tensor_v2"
                | "_rebuild_parameter"
                | "_rebuild_parameter_with_state"
        ),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => STORAGES.contains(&name) || matches!(name, "Size" | "Tensor"),
        "torch.storage" => matches!(name, "UntypedStorage" | "TypedStorage"),
        "torch.nn.parameter" => name == "Parameter",
        _ => false,
    }
}

/// A storage a pickle refers to: its key and its size in bytes.
pub(super) struct StorageRef {
    /// The storage's key (its file name under `data/` in a zip archive).
    pub key: String,
    /// Bytes its elements take.
    pub bytes: u64,
}

/// Bytes per element of a `torch.*Storage` type.
fn storage_element_size(name: &str) -> Option<u64> {
    let ty = name.rsplit('.').next()?;
    Some(match ty {
        "DoubleStorage" | "LongStorage" => 8,
        "FloatStorage" | "IntStorage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "UntypedStorage" => 1,
        _ => return None,
    })
}

/// One entry of the simulated pickle stack: a mark, a string, or any other value.
#[derive(Clone, Debug)]
enum Slot {
    Mark,
    Str(String),
    Int(u64),
    Global(String),
    Tuple(Vec<Slot>),
    Other,
}

/// Walks one pickle starting at `start` and returns the offset just after its STOP. Refuses
/// globals off the allow-list, unknown opcodes and malformed or truncated streams. Nothing is
/// constructed: the stack only tracks strings, small integers, globals and tuples, to resolve
/// `STACK_GLOBAL` and read torch's storage references (`BINPERSID` of
/// `("storage", type, key, location, numel, ...)`), which are returned.
pub(super) fn scan_pickle(
    data: &[u8],
    start: usize,
) -> Result<(usize, Vec<StorageRef>), PickleError> {
    let mut storages = Vec::new();
    let truncated = || "truncated pickle".to_string();
    let mut pos = start;
    let mut stack: Vec<Slot> = Vec::new();
    let mut memo: std::collections::HashMap<u64, Slot> = std::collections::HashMap::new();
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = pos.checked_add(n).filter(|&e| e <= data.len());
        let end = end.ok_or_else(truncated)?;
        let slice = &data[*pos..end];
        *pos = end;
        Ok(slice)
    };
    let line = |pos: &mut usize| -> Result<String, String> {
        let rest = &data[*pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(truncated)?;
        *pos += n + 1;
        Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
    };
    let uint = |bytes: &[u8]| {
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64)
    };
    fn pop(stack: &mut Vec<Slot>) -> Result<Slot, String> {
        stack
            .pop()
            .ok_or_else(|| "malformed pickle (stack underflow)".into())
    }
    fn pop_mark(stack: &mut Vec<Slot>) -> Result<Vec<Slot>, String> {
        let mark = stack
            .iter()
            .rposition(|slot| matches!(slot, Slot::Mark))
            .ok_or("malformed pickle (no MARK)")?;
        let items = stack.split_off(mark + 1);
        stack.pop();
        Ok(items)
    }
    fn tuple(stack: &mut Vec<Slot>, n: usize) -> Result<Slot, String> {
        let at = stack
            .len()
            .checked_sub(n)
            .ok_or("malformed pickle (stack underflow)")?;
        Ok(Slot::Tuple(stack.split_off(at)))
    }
    fn check(module: &str, name: &str) -> Result<(), PickleError> {
        if allowed_global(module, name) {
            Ok(())
        } else {
            Err(PickleError::Refused(format!(
                "the pickle asks for `{module}.{name}`, which is not on the \
                 tensor-loading allow-list (nothing was executed)"
            )))
        }
    }
    loop {
        let op = *take(&mut pos, 1)?.first().expect("one byte");
        match op {
            b'.' => return Ok((pos, storages)), // STOP
            0x80 => {
                take(&mut pos, 1)?; // PROTO
            }
            0x95 => {
                take(&mut pos, 8)?; // FRAME
            }
            b'(' => stack.push(Slot::Mark),
            // Constants and empty containers: push one value.
            b'N' | 0x88 | 0x89 | b'}' | b']' | b')' | 0x8f => stack.push(Slot::Other),
            b'K' => stack.push(Slot::Int(uint(take(&mut pos, 1)?))),
            b'M' => stack.push(Slot::Int(uint(take(&mut pos, 2)?))),
            b'J' => {
                let value = uint(take(&mut pos, 4)?);
                // Negative values are of no interest here.
                stack.push(if value < 1 << 31 {
                    Slot::Int(value)
                } else {
                    Slot::Other
                });
            }
            b'G' => {
                take(&mut pos, 8)?;
                stack.push(Slot::Other);
            }
            b'I' | b'L' | b'F' => {
                line(&mut pos)?;
                stack.push(Slot::Other);
            }
            0x8a => {
                let n = uint(take(&mut pos, 1)?) as usize; // LONG1
                let bytes = take(&mut pos, n)?;
                let small = n <= 7 || (n == 8 && bytes[7] < 0x80);
                let positive = bytes.last().is_none_or(|&b| b < 0x80);
                stack.push(if small && positive {
                    Slot::Int(uint(bytes))
                } else {
                    Slot::Other
                });
            }
            0x8b => {
                let n = uint(take(&mut pos, 4)?) as usize; // LONG4
                {
                    take(&mut pos, n)?;
                    stack.push(Slot::Other);
                }
            }
            // Strings (tracked for STACK_GLOBAL).
            b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                let width = match op {
                    b'X' | b'T' => 4,
                    0x8d => 8,
                    _ => 1,
                };
                let n = usize::try_from(uint(take(&mut pos, width)?)).map_err(|_| truncated())?;
                let text = String::from_utf8_lossy(take(&mut pos, n)?).into_owned();
                stack.push(Slot::Str(text));
            }
            b'V' | b'S' => {
                let text = line(&mut pos)?;
                stack.push(Slot::Str(text.trim_matches(['\'', '"']).to_string()));
            }
            // Bytes.
            b'B' | b'C' | 0x8e | 0x96 => {
                let width = match op {
                    b'B' => 4,
                    b'C' => 1,
                    _ => 8,
                };
                let n = usize::try_from(uint(take(&mut pos, width)?)).map_err(|_| truncated())?;
                {
                    take(&mut pos, n)?;
                    stack.push(Slot::Other);
                }
            }
            // Globals.
            b'c' => {
                let module = line(&mut pos)?;
                let name = line(&mut pos)?;
                check(&module, &name)?;
                stack.push(Slot::Global(format!("{module}.{name}")));
            }
            b'i' => {
                let module = line(&mut pos)?;
                let name = line(&mut pos)?;
                check(&module, &name)?;
                pop_mark(&mut stack)?;
                stack.push(Slot::Other);
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Slot::Str(module), Slot::Str(name)) => {
                        check(&module, &name)?;
                        stack.push(Slot::Global(format!("{module}.{name}")));
                    }
                    _ => {
                        return Err(PickleError::Refused(
                            "a STACK_GLOBAL whose names are not plain strings".into(),
                        ))
                    }
                }
            }
            0x82..=0x84 => {
                return Err(PickleError::Refused(
                    "the pickle uses the copyreg extension registry".into(),
                ))
            }
            // Memo.
            b'q' | b'r' | b'p' => {
                let key = match op {
                    b'q' => uint(take(&mut pos, 1)?),
                    b'r' => uint(take(&mut pos, 4)?),
                    _ => line(&mut pos)?
                        .parse()
                        .map_err(|_| "malformed PUT".to_string())?,
                };
                let top = stack.last().cloned().ok_or("malformed pickle (PUT)")?;
                memo.insert(key, top);
            }
            0x94 => {
                let top = stack.last().cloned().ok_or("malformed pickle (MEMOIZE)")?;
                memo.insert(memo.len() as u64, top);
            }
            b'h' | b'j' | b'g' => {
                let key = match op {
                    b'h' => uint(take(&mut pos, 1)?),
                    b'j' => uint(take(&mut pos, 4)?),
                    _ => line(&mut pos)?
                        .parse()
                        .map_err(|_| "malformed GET".to_string())?,
                };
                let value = memo.get(&key).cloned().ok_or("malformed pickle (GET)")?;
                stack.push(value);
            }
            // Persistent ids (torch's storages).
            b'P' => {
                return Err(PickleError::Refused(
                    "a text persistent id (torch.save writes none)".into(),
                ))
            }
            b'Q' => {
                let storage = match pop(&mut stack)? {
                    Slot::Tuple(items) => match items.as_slice() {
                        [Slot::Str(tag), Slot::Global(ty), Slot::Str(key), _, Slot::Int(numel), ..]
                            if tag == "storage" =>
                        {
                            storage_element_size(ty).map(|size| StorageRef {
                                key: key.clone(),
                                bytes: numel.saturating_mul(size),
                            })
                        }
                        _ => None,
                    },
                    _ => None,
                };
                let storage = storage.ok_or_else(|| {
                    PickleError::Refused("an unreadable storage reference".into())
                })?;
                storages.push(storage);
                stack.push(Slot::Other);
            }
            // Stack manipulation and building.
            b'0' => {
                pop(&mut stack)?;
            }
            b'1' => {
                pop_mark(&mut stack)?;
            }
            b'2' => {
                let top = stack.last().cloned().ok_or("malformed pickle (DUP)")?;
                stack.push(top);
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Slot::Tuple(items));
            }
            b'l' | b'd' | 0x91 | b'o' => {
                pop_mark(&mut stack)?;
                stack.push(Slot::Other);
            }
            b'e' | b'u' | 0x90 => {
                pop_mark(&mut stack)?;
            }
            0x85..=0x87 => {
                let items = tuple(&mut stack, (op - 0x84) as usize)?;
                stack.push(items);
            }
            b'R' | 0x81 => {
                pop(&mut stack)?;
                pop(&mut stack)?;
                stack.push(Slot::Other);
            }
            0x92 => {
                for _ in 0..3 {
                    pop(&mut stack)?;
                }
                stack.push(Slot::Other);
            }
            b'a' | b'b' => {
                pop(&mut stack)?;
            }
            b's' => {
                pop(&mut stack)?;
                pop(&mut stack)?;
            }
            other => {
                return Err(PickleError::Refused(format!(
                    "unknown or unsupported pickle opcode 0x{other:02x} at byte {}",
                    pos - 1
                )))
            }
        }
    }
}
