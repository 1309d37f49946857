import Formats
import Foundation
import Transport
import Wire

/// Samples the host's CPU load once a second while a run runs and appends it to the run folder's
/// `host.jsonl`: the share of the last second in which runnable tasks waited for a CPU (the kernel's
/// pressure stall information, `/proc/pressure/cpu` "some"), and where the kernel has no PSI, the
/// run queue and steal time from `/proc/stat`. Analysis reads it to tell an overloaded machine from a
/// slow protocol (a timing expectation in an overloaded window is inconclusive, not failed).
public enum HostSampler {
    /// One reading of the kernel's cumulative counters.
    public struct Counters: Sendable, Equatable {
        /// `some total=` of /proc/pressure/cpu, microseconds (nil: no PSI on this kernel).
        public var cpuSomeMicros: UInt64?
        /// Jiffies of the `cpu` line of /proc/stat: all, and steal.
        public var cpuJiffies: UInt64
        public var stealJiffies: UInt64
        /// `procs_running` of /proc/stat: tasks runnable right now.
        public var procsRunning: Int
    }

    /// `some avg10=… avg60=… avg300=… total=N` → N.
    public static func parsePressure(_ text: String) -> UInt64? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("some ") }) else { return nil }
        for field in line.split(separator: " ") where field.hasPrefix("total=") {
            return UInt64(field.dropFirst(6))
        }
        return nil
    }

    /// The `cpu` and `procs_running` lines of /proc/stat.
    public static func parseStat(_ text: String) -> (cpu: UInt64, steal: UInt64, running: Int) {
        var cpu: UInt64 = 0, steal: UInt64 = 0, running = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.first == "cpu" {
                let values = fields.dropFirst().map { UInt64($0) ?? 0 }
                cpu = values.reduce(0, +)
                steal = values.count > 7 ? values[7] : 0
            } else if fields.first == "procs_running", fields.count > 1 {
                running = Int(fields[1]) ?? 0
            }
        }
        return (cpu, steal, running)
    }

    public static func read() -> Counters {
        let pressure = (try? String(contentsOfFile: "/proc/pressure/cpu", encoding: .utf8)).flatMap(parsePressure)
        let stat = parseStat((try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? "")
        return Counters(cpuSomeMicros: pressure, cpuJiffies: stat.cpu, stealJiffies: stat.steal,
                        procsRunning: stat.running)
    }

    /// One line of `host.jsonl` from two readings `elapsedMs` apart.
    public static func line(timeMs: UInt64, elapsedMs: UInt64, from old: Counters, to new: Counters, cores: Int) -> String {
        var fields = ["\"t\":\(timeMs)", "\"cores\":\(cores)", "\"runQueue\":\(new.procsRunning)"]
        if let before = old.cpuSomeMicros, let after = new.cpuSomeMicros, after >= before, elapsedMs > 0 {
            let percent = min(100, Double(after - before) / 10 / Double(elapsedMs))
            fields.append("\"cpuSomePercent\":" + String(format: "%.1f", percent))
        }
        if new.cpuJiffies > old.cpuJiffies, new.stealJiffies >= old.stealJiffies {
            let percent = Double(new.stealJiffies - old.stealJiffies) * 100 / Double(new.cpuJiffies - old.cpuJiffies)
            fields.append("\"stealPercent\":" + String(format: "%.1f", percent))
        }
        return "{" + fields.joined(separator: ",") + "}\n"
    }

    /// Samples into `dir/host.jsonl` every second until the task is cancelled.
    public static func task(dir: String) -> Task<Void, Never> {
        Task.detached(priority: .high) {
            let path = dir + "/host.jsonl"
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else { return }
            defer { try? handle.close() }
            let cores = UsableCores.count
            var previous = read()
            var previousMs = FaultEngine.now()
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let now = FaultEngine.now()
                let current = read()
                let text = line(timeMs: now, elapsedMs: now - previousMs, from: previous, to: current, cores: cores)
                try? handle.write(contentsOf: Data(text.utf8))
                previous = current
                previousMs = now
            }
        }
    }
}
