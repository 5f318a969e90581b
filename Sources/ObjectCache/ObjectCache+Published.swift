/// What published content takes, when a volume's would not fit.
public struct PublishedMemory: Sendable, Equatable {
    /// Bytes published volumes hold now (objects not fetched yet counted at their largest).
    public var used: Int
    /// Bytes the refused volume would add at most.
    public var needed: Int
    /// Objects the refused volume would add.
    public var newObjects: Int
    public var limit: Int

    public init(used: Int, needed: Int, newObjects: Int, limit: Int) {
        self.used = used
        self.needed = needed
        self.newObjects = newObjects
        self.limit = limit
    }
}

extension ObjectCache {
    /// Pins the objects a published volume shows: they are kept whatever their idleness or the
    /// LRU bound, because the volume must go on serving them through a Key Vault outage. The
    /// volume's earlier pins are replaced. Pinned content is bounded by `maxPublishedBytes`,
    /// checked before anything is fetched: objects no volume has pinned yet count at
    /// `maxObjectBytes` each until fetched. When they would not fit, nothing changes and the
    /// answer says by how much. `admitting` false skips the bound, for volumes admitted already
    /// (taken over from the previous plugin process, whose content is not imported yet).
    public func pin(_ references: [ObjectReference], in source: SourceID, for volume: String, admitting: Bool = true)
        -> PublishedMemory?
    {
        let keys = Set(references.map { SlotKey(source: source, subject: .object($0)) })
        let added = keys.filter { pins[$0] == nil }
        let used = publishedBytes
        let needed = added.reduce(0) { $0 + pinnedSize(of: $1) }
        // Objects this volume alone pinned and no longer shows free their room.
        let freed = (pinsByVolume[volume] ?? []).subtracting(keys).filter { pins[$0] == [volume] }.reduce(0) {
            $0 + pinnedSize(of: $1)
        }
        guard !admitting || used - freed + needed <= configuration.maxPublishedBytes else {
            return PublishedMemory(
                used: used, needed: needed, newObjects: added.count, limit: configuration.maxPublishedBytes)
        }
        unpin(volume: volume)
        for key in keys { pins[key, default: []].insert(volume) }
        pinsByVolume[volume] = keys
        return nil
    }

    /// Lets go of what a volume pinned; content nobody else pins goes back to the LRU bound.
    public func unpin(volume: String) {
        for key in pinsByVolume.removeValue(forKey: volume) ?? [] {
            pins[key]?.remove(volume)
            if pins[key]?.isEmpty == true { pins[key] = nil }
        }
    }

    /// Bytes of pinned content, objects not fetched yet counted at `maxObjectBytes`.
    public var publishedBytes: Int {
        pins.keys.reduce(0) { $0 + pinnedSize(of: $1) }
    }

    func isPinned(_ key: SlotKey) -> Bool {
        pins[key] != nil
    }

    private func pinnedSize(of key: SlotKey) -> Int {
        guard let slot = slots[key], slot.value != nil else { return configuration.maxObjectBytes }
        return slot.bytes
    }
}
