//! Looking at bytes before trusting them: the WebAssembly header (empty? wasm at all? a
//! component or a core module?), the size ceiling, the SHA-256 digest, and what a
//! compiled component imports and exports.

use crate::errors::AddError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Engine;
use waystation_core::World;

const MAGIC: &[u8; 4] = b"\0asm";
/// Version and layer of a component binary (layer 1).
const COMPONENT_LAYER: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
/// Version and layer of a core module binary (layer 0).
const MODULE_LAYER: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// What `plugin check` reports about a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The world it implements.
    pub world: World,
    /// Its imports, as `name: kind`.
    pub imports: Vec<String>,
    /// Its exports, as `name: kind`.
    pub exports: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub digest: String,
}

/// Hex SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cheap checks, before compiling: not empty, not over `max_bytes`, a wasm header,
/// and the component layer rather than a core module.
///
/// # Errors
/// [`AddError::Empty`], [`AddError::TooLarge`], [`AddError::NotWasm`],
/// [`AddError::NotAComponent`], or [`AddError::Invalid`] for an unknown version.
pub fn check_header(bytes: &[u8], max_bytes: u64) -> Result<(), AddError> {
    if bytes.is_empty() {
        return Err(AddError::Empty);
    }
    let size = bytes.len() as u64;
    if size > max_bytes {
        return Err(AddError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(AddError::NotWasm);
    }
    let layer = &bytes[4..8];
    if layer == MODULE_LAYER {
        return Err(AddError::NotAComponent);
    }
    if layer != COMPONENT_LAYER {
        return Err(AddError::Invalid {
            message: format!("unsupported WebAssembly binary version/layer {layer:02x?}"),
            source: None,
        });
    }
    Ok(())
}

/// wasmparser's refusal of the bytes, kept as the source (its byte offset).
fn unparsable(e: wasmparser::BinaryReaderError) -> AddError {
    AddError::Invalid {
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

/// The sandbox's ceilings on what a component may declare.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ceilings {
    /// Largest linear memory, in bytes (the pool's slot size).
    pub memory_bytes: u64,
    /// Most elements of one table.
    pub table_elements: u64,
}

/// Every core module's memories and tables, nested ones included, against `ceilings`:
/// an initial size beyond them would fail every instantiation, so it is refused before
/// compiling, naming the memory or table and the limit. (Left to wasmtime, the refusal
/// came when the compiled artifact was mapped, and read as a storage failure: a 500.)
///
/// # Errors
/// [`AddError::OverLimits`]; [`AddError::Invalid`] when the bytes do not parse.
pub(crate) fn check_limits(bytes: &[u8], ceilings: Ceilings) -> Result<(), AddError> {
    use wasmparser::{Parser, Payload};
    let (mut module, mut memories, mut tables) = (0usize, 0usize, 0usize);
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(unparsable)?;
        match payload {
            Payload::ModuleSection { .. } => {
                module += 1;
                (memories, tables) = (0, 0);
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(unparsable)?;
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    let bytes = memory.initial.saturating_mul(page);
                    if bytes > ceilings.memory_bytes {
                        return Err(AddError::OverLimits {
                            message: format!(
                                "memory {memories} of core module {module} starts at {bytes} bytes ({} pages), over the limit of {} bytes per memory",
                                memory.initial, ceilings.memory_bytes
                            ),
                        });
                    }
                    memories += 1;
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(unparsable)?;
                    if table.ty.initial > ceilings.table_elements {
                        return Err(AddError::OverLimits {
                            message: format!(
                                "table {tables} of core module {module} starts with {} elements, over the limit of {} elements per table",
                                table.ty.initial, ceilings.table_elements
                            ),
                        });
                    }
                    tables += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Which world the component's exports point at, before type-checking them.
pub(crate) fn world_by_exports(exports: &[String]) -> Result<World, AddError> {
    let has = |name: &str| exports.iter().any(|n| n == name);
    match (has("score"), has("render")) {
        (true, false) => Ok(World::Scorer),
        (false, true) => Ok(World::Notifier),
        _ => Err(AddError::UnknownWorld {
            exports: exports.to_vec(),
        }),
    }
}

fn kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "func",
        ComponentItem::CoreFunc(_) => "core func",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
}

/// Imports and exports as `name: kind` lines, and the bare export names.
pub(crate) fn surface(
    engine: &Engine,
    component: &Component,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty
        .imports(engine)
        .map(|(name, ext)| format!("{name}: {}", kind(&ext.ty)))
        .collect();
    let mut exports = Vec::new();
    let mut names = Vec::new();
    for (name, ext) in ty.exports(engine) {
        exports.push(format!("{name}: {}", kind(&ext.ty)));
        names.push(name.to_owned());
    }
    (imports, exports, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_empty_not_wasm_module_and_component_apart() {
        assert!(matches!(check_header(b"", 10), Err(AddError::Empty)));
        assert!(matches!(
            check_header(b"hello world", 100),
            Err(AddError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0", 100),
            Err(AddError::NotAComponent)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0", 100).is_ok());
        assert!(matches!(
            check_header(b"\0asm\x0d\0\x01\0", 4),
            Err(AddError::TooLarge { size: 8, max: 4 })
        ));
    }

    #[test]
    fn bytes_that_do_not_parse_keep_wasmparsers_error_as_source() {
        // A component header, then a section id with a length running past the end.
        let err = check_limits(
            b"\0asm\x0d\0\x01\0\x01\x7f",
            Ceilings {
                memory_bytes: 1 << 20,
                table_elements: 100,
            },
        )
        .unwrap_err();
        assert!(matches!(err, AddError::Invalid { .. }), "{err}");
        let parser = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<wasmparser::BinaryReaderError>())
            .expect("wasmparser's error is the source");
        assert_eq!(parser.offset(), 10, "where the input ends: {parser}");
        assert!(err.to_string().ends_with(&parser.to_string()), "{err}");
    }

    #[test]
    fn digests_are_lowercase_hex_sha256() {
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_world_follows_the_export_name() {
        let e = |n: &str| vec![n.to_owned()];
        assert_eq!(world_by_exports(&e("score")).unwrap(), World::Scorer);
        assert_eq!(world_by_exports(&e("render")).unwrap(), World::Notifier);
        assert!(matches!(
            world_by_exports(&e("run")),
            Err(AddError::UnknownWorld { .. })
        ));
    }
}
