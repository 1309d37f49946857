import HeapModule

/// The simulator's agenda: items due at a virtual time (microseconds), earliest first, and among
/// items due at the same time the one scheduled first. That order is the whole of the simulator's
/// determinism: no wall clock, no threads, no hash-order iteration decides what runs next.
struct EventQueue<Item> {
    struct Entry: Comparable {
        var timeUs: UInt64
        var sequence: UInt64
        var item: Item

        static func < (lhs: Entry, rhs: Entry) -> Bool { (lhs.timeUs, lhs.sequence) < (rhs.timeUs, rhs.sequence) }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.sequence == rhs.sequence }
    }

    /// More pending items than this is a runaway schedule (a bug), not a load to absorb.
    static var countMax: Int { 4_000_000 }

    private var heap = Heap<Entry>()
    private var sequence: UInt64 = 0

    var count: Int { heap.count }
    var nextTimeUs: UInt64? { heap.min?.timeUs }

    mutating func push(_ item: Item, atUs timeUs: UInt64) {
        precondition(heap.count < EventQueue.countMax, "simulation agenda over \(EventQueue.countMax) items at \(timeUs) µs")
        sequence += 1
        heap.insert(Entry(timeUs: timeUs, sequence: sequence, item: item))
    }

    mutating func pop() -> Entry? { heap.popMin() }
}
