import FoundationEssentials
import PKI

/// Cached content handed to the next akvfs process at a planned handoff, so it starts with
/// what this one had: no Key Vault call for it, and the last good content still there when Key
/// Vault is down during an upgrade. The bytes hold secret values: they travel in a sealed
/// memory-only file and are zeroed once written or read.
extension ObjectCache {
    /// Every object and listing held, with how old it is; renderings are made again on demand.
    public func exportContent() -> [UInt8] {
        let now = configuration.now()
        var writer = ByteWriter()
        writer.string(Self.contentFormat)
        let held = slots.filter { $0.value.value != nil }
        writer.integer(UInt64(held.count))
        for (key, slot) in held {
            writer.source(key.source)
            writer.subject(key.subject)
            writer.integer(UInt64(max(.zero, now - slot.fetchedAt).components.seconds))
            writer.bool(slot.stale)
            writer.bool(slot.retired)
            switch slot.value {
            case .object(let object)?:
                writer.byte(0)
                writer.metadata(object.metadata)
                writer.payload(object.payload)
            case .listing(let items)?:
                writer.byte(1)
                writer.integer(UInt64(items.count))
                for item in items { writer.listed(item) }
            case nil:
                break
            }
        }
        return writer.bytes
    }

    /// Takes in what `exportContent` wrote (another process's cache), keeping each entry's age.
    /// Entries this cache holds already are left as they are.
    public func importContent(_ bytes: [UInt8]) throws(CacheError) {
        var reader = ByteReader(bytes)
        let now = configuration.now()
        do throws(ByteReader.Malformed) {
            guard try reader.string() == Self.contentFormat else {
                throw ByteReader.Malformed(description: "cached content of another format")
            }
            // One SourceID per source, shared by its entries, as when they were fetched.
            var sources = Set<SourceID>()
            for _ in 0..<(try reader.integer()) {
                let key = SlotKey(source: try reader.source(interning: &sources), subject: try reader.subject())
                let age = Duration.seconds(Int64(try reader.integer()))
                let stale = try reader.bool()
                let retired = try reader.bool()
                let value: CachedValue
                switch try reader.byte() {
                case 0: value = .object(FetchedObject(metadata: try reader.metadata(), payload: try reader.payload()))
                case 1:
                    value = .listing(
                        try (0..<(try reader.integer())).map { _ throws(ByteReader.Malformed) in try reader.listed() })
                default: throw ByteReader.Malformed(description: "an unknown kind of cached value")
                }
                guard slots[key] == nil else { continue }
                lastGeneration += 1
                let slot = Slot(now: now, accessOrder: nextAccessOrder())
                slot.replace(with: value, generation: lastGeneration)
                slot.markFetched(at: now - age)
                slot.stale = stale
                slot.retired = retired
                slots[key] = slot
                totalBytes += slot.bytes
            }
        } catch {
            throw CacheError(kind: .invalid, message: "the cached content handed over is damaged: \(error.description)")
        }
        enforceMemoryBound()
    }

    static let contentFormat = "akvfs-cache-2"
}

extension ByteWriter {
    fileprivate mutating func subject(_ subject: Subject) {
        switch subject {
        case .object(let reference):
            byte(0)
            self.reference(reference)
        case .listing(let kind):
            byte(1)
            self.kind(kind)
        case .versions(let kind, let name):
            byte(2)
            self.kind(kind)
            string(name)
        }
    }

    fileprivate mutating func time(_ value: Int64?) { optional(value) { $0.signed($1) } }

    fileprivate mutating func tags(_ tags: [String: String]) {
        strings(tags.keys.sorted())
        strings(tags.keys.sorted().map { tags[$0]! })
    }

    fileprivate mutating func metadata(_ metadata: ObjectMetadata) {
        string(metadata.id)
        string(metadata.version)
        bool(metadata.enabled)
        optional(metadata.contentType) { $0.string($1) }
        time(metadata.created)
        time(metadata.updated)
        time(metadata.notBefore)
        time(metadata.expires)
        tags(metadata.tags)
        bool(metadata.certificateBacked)
        bool(metadata.managed)
    }

    fileprivate mutating func payload(_ payload: Payload) {
        switch payload {
        case .secret(let bytes):
            byte(0)
            data(bytes)
        case .key(let jwk):
            byte(1)
            data((try? JSONEncoder().encode(jwk)) ?? Data())
        case .certificate(let der):
            byte(2)
            data(der)
        }
    }

    fileprivate mutating func listed(_ item: ListedObject) {
        string(item.name)
        optional(item.version) { $0.string($1) }
        bool(item.enabled)
        bool(item.managed)
        optional(item.contentType) { $0.string($1) }
        time(item.created)
        time(item.updated)
        tags(item.tags)
    }
}

extension ByteReader {
    fileprivate mutating func subject() throws(Malformed) -> Subject {
        switch try byte() {
        case 0: return .object(try reference())
        case 1: return .listing(try kind())
        case 2: return .versions(try kind(), name: try string())
        default: throw Malformed(description: "an unknown kind of cache entry")
        }
    }

    fileprivate mutating func time() throws(Malformed) -> Int64? {
        try optional { reader throws(Malformed) in try reader.signed() }
    }

    fileprivate mutating func tags() throws(Malformed) -> [String: String] {
        let keys = try strings()
        let values = try strings()
        guard keys.count == values.count else {
            throw Malformed(description: "tags whose names and values do not match")
        }
        return Dictionary(zip(keys, values)) { first, _ in first }
    }

    fileprivate mutating func metadata() throws(Malformed) -> ObjectMetadata {
        ObjectMetadata(
            id: try string(), version: try string(), enabled: try bool(),
            contentType: try optional { reader throws(Malformed) in try reader.string() },
            created: try time(), updated: try time(), notBefore: try time(), expires: try time(), tags: try tags(),
            certificateBacked: try bool(), managed: try bool())
    }

    fileprivate mutating func payload() throws(Malformed) -> Payload {
        switch try byte() {
        case 0:
            var bytes = try data()
            return .secret(SecretBytes(taking: &bytes))
        case 1:
            guard let jwk = try? JSONDecoder().decode(JSONWebKey.self, from: Data(try data())) else {
                throw Malformed(description: "a key that is not a JSON web key")
            }
            return .key(jwk)
        case 2: return .certificate(try data())
        default: throw Malformed(description: "an unknown kind of payload")
        }
    }

    fileprivate mutating func listed() throws(Malformed) -> ListedObject {
        ListedObject(
            name: try string(), version: try optional { reader throws(Malformed) in try reader.string() },
            enabled: try bool(), managed: try bool(),
            contentType: try optional { reader throws(Malformed) in try reader.string() }, created: try time(),
            updated: try time(), tags: try tags())
    }
}
