import Wire

/// Batches from their chunks, in the order the inbox took them: a chunk 0 starts a batch (abandoning a
/// partial one), the others must follow in order. The L1 dispute contract and derivation assemble the
/// same chunk stream with this, so they agree on which batches exist. Pure.
public struct BatchAssembler: Sendable {
    /// No batch assembles to more than this (a bound on what a chunk stream can make a node hold).
    public static let batchBytesMax = 8_000_000

    struct Partial: Sendable {
        var batchIndex: UInt64
        var chunkCount: UInt16
        var nextChunk: UInt16
        var data: [UInt8]
    }

    var partial: Partial?

    public init() {}

    /// Takes the next chunk; returns the batches given up (with why) and the batch it completes, if any.
    public mutating func add(_ chunk: BatchChunk) -> (rejected: [(index: UInt64, reason: String)], batch: Batch?) {
        var rejected: [(index: UInt64, reason: String)] = []
        if chunk.chunkIndex == 0 {
            if let partial {
                rejected.append((partial.batchIndex, "replaced by batch \(chunk.batchIndex) after \(partial.nextChunk) of \(partial.chunkCount) chunks"))
            }
            partial = Partial(batchIndex: chunk.batchIndex, chunkCount: chunk.chunkCount, nextChunk: 0, data: [])
        }
        // Taken out (not copied), so appending a chunk does not copy the bytes gathered so far.
        guard var current = partial.take(), current.batchIndex == chunk.batchIndex,
              current.nextChunk == chunk.chunkIndex, current.chunkCount == chunk.chunkCount else {
            rejected.append((chunk.batchIndex, "chunk \(chunk.chunkIndex) of \(chunk.chunkCount) out of order"))
            return (rejected, nil)
        }
        guard current.data.count + chunk.data.count <= BatchAssembler.batchBytesMax else {
            rejected.append((chunk.batchIndex, "over \(BatchAssembler.batchBytesMax) bytes"))
            return (rejected, nil)
        }
        current.data += chunk.data
        current.nextChunk += 1
        guard current.nextChunk == current.chunkCount else {
            partial = current
            return (rejected, nil)
        }
        guard let batch = try? Batch(decoding: current.data), batch.index == current.batchIndex else {
            rejected.append((current.batchIndex, "batch bytes do not decode"))
            return (rejected, nil)
        }
        return (rejected, batch)
    }
}
