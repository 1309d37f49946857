import Basics
import Consensus

extension Twins {
    /// The guided search over Twins cases: every other case is drawn fresh from the next seed, the rest are
    /// neighbours (`mutate`) of the cases that came nearest to a disagreement so far (`nearness`: honest
    /// validators that precommitted or prevoted two blocks at one height). A lock bug needs such a state
    /// first, and uniform draws rarely reach it; near misses kept and varied do. The sequence of cases is a
    /// function of the first seed (the caller stops it: a budget, a count).
    public struct Search {
        public let planted: Tendermint.PlantedBug?
        public let consensus: BFT.ProtocolName?
        public private(set) var cases = 0
        public private(set) var fresh = 0
        /// The nearest cases so far, at most `corpusMax`.
        public private(set) var corpus: [(drawn: Case, nearness: Int)] = []
        var nextSeed: UInt64
        var rng: SplitMix64

        public static let corpusMax = 64
        /// One precommitted and one prevoted block per height: an ordinary case.
        static let ordinary = 11

        public init(planted: Tendermint.PlantedBug?, firstSeed: UInt64, consensus: BFT.ProtocolName? = nil) {
            self.planted = planted
            self.consensus = consensus
            nextSeed = firstSeed
            rng = SplitMix64(seed: firstSeed ^ 0x4755_4944_4544) // "GUIDED"
        }

        /// Runs the next case; `willRun` sees it first (a case that traps takes the process with it).
        public mutating func next(willRun: (Case) throws -> Void = { _ in }) throws
            -> (drawn: Case, verdict: Swarm.Verdict, nearness: Int) {
            let drawn: Case
            if cases % 2 == 0 || corpus.isEmpty {
                drawn = Twins.draw(seed: nextSeed)
                nextSeed += 1
                fresh += 1
            } else {
                let nearest = corpus.count < 8 ? corpus.count : 8
                drawn = Twins.mutate(corpus[Int(rng.next() % UInt64(nearest))].drawn, rng: &rng)
            }
            cases += 1
            try willRun(drawn)
            let (verdict, _, nearness) = try Twins.run(drawn, planted: planted, consensus: consensus)
            if nearness > Search.ordinary {
                corpus.append((drawn, nearness))
                corpus.sort { $0.nearness > $1.nearness }
                if corpus.count > Search.corpusMax { corpus.removeLast() }
            }
            return (drawn, verdict, nearness)
        }
    }
}
