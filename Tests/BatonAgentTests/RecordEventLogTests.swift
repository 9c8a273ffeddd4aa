@testable import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// A deployment record kept as a summary plus an append-only event log reads back as
/// exactly the record the changes make in memory (what rewriting the whole record after
/// every change stored), whatever a crash left at the end of the log.
@Suite struct RecordEventLogTests {
    /// Changes a record in memory and stores each change the way the engine does: most
    /// appended to the event log, some as a new summary.
    struct Recorder {
        let store: StateStore
        var record: DeploymentRecord
        var lines = 0
        var time: Date

        init(store: StateStore) throws {
            self.store = store
            time = Date(timeIntervalSince1970: 1_800_000_000)
            record = DeploymentRecord(
                id: "web-7", hostID: "host-1", app: "web", release: "v2", serial: 7, environment: "staging",
                payloadDigest: String(repeating: "a", count: 64), artifactSHA256: String(repeating: "b", count: 64),
                signers: [Signer(keyid: "k1", names: ["ci"])], isRollback: false, previousRelease: "v1", phase: .accepted,
                createdAt: time, owner: "team", notes: "a note")
            record.timings = [PhaseTiming(phase: .accepted, startedAt: time)]
            record.events = [
                DeploymentEvent(sequence: 1, time: time, deploymentID: "web-7", app: "web", release: "v2", phase: .accepted, message: "accepted")
            ]
            try store.writeNewRecord(record)
        }

        mutating func change(summary: Bool = false, _ make: (DeploymentRecord, Date) -> RecordChange) throws {
            time += 1
            let change = make(record, time)
            change.apply(to: &record)
            if summary {
                try store.writeSummary(record, eventLogLines: lines)
            } else {
                try store.appendChange(change, to: record.id)
                lines += 1
            }
        }

        mutating func transition(_ phase: DeploymentPhase, error: ErrorInfo? = nil) throws {
            try change(summary: phase == .switching || phase.isTerminal) { record, time in
                RecordChange(time: time, phase: phase, event: Self.event(record, time, phase, "now \(phase.rawValue)", error: error), error: error)
            }
        }

        mutating func note(_ message: String) throws {
            try change { record, time in RecordChange(time: time, event: Self.event(record, time, record.phase, message)) }
        }

        static func event(_ record: DeploymentRecord, _ time: Date, _ phase: DeploymentPhase, _ message: String, error: ErrorInfo? = nil) -> DeploymentEvent {
            DeploymentEvent(
                sequence: record.events.count + 1, time: time, deploymentID: record.id, app: record.app, release: record.release,
                phase: phase, message: message, error: error)
        }

        static func hook(_ name: String, _ time: Date) -> HookRun {
            HookRun(
                hook: name, release: "v2", command: ["/bin/sh", "-c", "true"], startedAt: time, durationMilliseconds: 12,
                exitStatus: 0, signal: nil, timedOut: false, stdoutTail: "ok\n", stderrTail: "")
        }

        static func attempt(_ time: Date, _ n: Int) -> HealthAttempt {
            HealthAttempt(stage: "baking", release: "v2", check: "tcp 127.0.0.1:80", time: time, durationMilliseconds: n % 7, passed: true, detail: "connected \(n)")
        }
    }

    func withStore(_ body: (StateStore, DataLayout) throws -> Void) throws {
        let dir = try TemporaryDirectory(prefix: "baton-eventlog")
        defer { dir.remove() }
        let layout = DataLayout(root: dir.path + "/data")
        _ = try layout.create()
        try body(StateStore(layout: layout), layout)
    }

    func json(_ record: DeploymentRecord?) throws -> String {
        String(decoding: try BatonJSON.encode(try #require(record), pretty: true), as: UTF8.self)
    }

    @Test func aRecordReadFromItsSummaryAndEventLogIsTheWholeRecord() throws {
        try withStore { store, layout in
            var recorder = try Recorder(store: store)
            let id = recorder.record.id
            #expect(try json(store.loadRecord(id)) == json(recorder.record))
            try recorder.transition(.fetching)
            try recorder.note("artifact found in the cache")
            try recorder.transition(.unpacking)
            try recorder.transition(.preparing)
            try recorder.change { _, time in RecordChange(time: time, hook: Recorder.hook("prepare", time)) }
            #expect(try json(store.loadRecord(id)) == json(recorder.record))
            try recorder.transition(.switching)
            try recorder.note("current → v2 (was v1)")
            try recorder.transition(.activating)
            try recorder.change { _, time in RecordChange(time: time, hook: Recorder.hook("activate", time)) }
            try recorder.transition(.checking)
            try recorder.transition(.baking)
            // More attempts than a record keeps: the log replays the trimming too.
            for batch in 0..<14 {
                try recorder.change { _, time in
                    RecordChange(time: time, attempts: (0..<50).map { Recorder.attempt(time, batch * 50 + $0) })
                }
            }
            #expect(recorder.record.healthAttempts.count == 600)

            // The summary alone is stale (it was written at the switch); with its log it is whole.
            let summary = try BatonJSON.decode(DeploymentRecord.self, from: Data(contentsOf: URL(fileURLWithPath: layout.deployment(id))))
            #expect(summary.phase == .switching)
            let read = try store.loadRecord(id)
            #expect(read == recorder.record)
            #expect(try json(read) == json(recorder.record))

            try recorder.transition(.rolledBack, error: ErrorInfo(code: "bake_failed", message: "a health check failed while baking"))
            let ended = try store.loadRecord(id)
            #expect(try json(ended) == json(recorder.record))
            #expect(ended?.phase == .rolledBack)
            #expect(ended?.timings.map(\.phase) == [.accepted, .fetching, .unpacking, .preparing, .switching, .activating, .checking, .baking])
            #expect(try store.loadStoredRecord(id)?.eventLogLines == recorder.lines)
        }
    }

    @Test func anAppendWritesTheLogAndLeavesTheSummaryFileAlone() throws {
        try withStore { store, layout in
            var recorder = try Recorder(store: store)
            let path = layout.deployment(recorder.record.id)
            let before = try FileIdentity(path)
            try recorder.transition(.fetching)
            try recorder.note("artifact received")
            try recorder.change { _, time in RecordChange(time: time, hook: Recorder.hook("prepare", time)) }
            #expect(try FileIdentity(path) == before)
            #expect(try Data(contentsOf: URL(fileURLWithPath: layout.deploymentEvents(recorder.record.id))).filter { $0 == 0x0A }.count == 3)
            // A summary is a new file renamed over the old one.
            try recorder.transition(.switching)
            #expect(try FileIdentity(path) != before)
        }
    }

    @Test func aTornLastLineIsIgnoredAndCutBeforeTheNextAppend() throws {
        try withStore { store, layout in
            var recorder = try Recorder(store: store)
            let id = recorder.record.id
            try recorder.transition(.fetching)
            try recorder.note("artifact received")
            // A crash in the middle of an append: part of a line, no newline.
            let log = layout.deploymentEvents(id)
            let handle = try #require(FileHandle(forWritingAtPath: log))
            handle.seekToEndOfFile()
            handle.write(Data(#"{"event":{"app":"web","deploymentID":"web-7","message":"unpa"#.utf8))
            handle.closeFile()
            #expect(try json(store.loadRecord(id)) == json(recorder.record))
            #expect(StateReader(layout: layout).problems().isEmpty)

            try recorder.transition(.unpacking)
            #expect(try json(store.loadRecord(id)) == json(recorder.record))
            let lines = String(decoding: try Data(contentsOf: URL(fileURLWithPath: log)), as: UTF8.self).split(separator: "\n")
            #expect(lines.count == 3)
            #expect(!lines.contains { $0.contains("unpa\"") || $0.hasSuffix("unpa") })
        }
    }

    @Test func aCompleteLineThatDoesNotReadIsStateCorrupt() throws {
        try withStore { store, layout in
            var recorder = try Recorder(store: store)
            let id = recorder.record.id
            try recorder.transition(.fetching)
            let log = layout.deploymentEvents(id)
            let handle = try #require(FileHandle(forWritingAtPath: log))
            handle.seekToEndOfFile()
            handle.write(Data("not json\n".utf8))
            handle.closeFile()
            #expect {
                try store.loadRecord(id)
            } throws: { error in
                guard let error = error as? AgentError else { return false }
                return error.code == .stateCorrupt && error.message.contains(log) && error.message.contains("line 2")
            }
        }
    }

    @Test func aRecordWrittenWholeBeforeTheEventLogStillReads() throws {
        try withStore { store, layout in
            let recorder = try Recorder(store: store)
            var record = recorder.record
            record.phase = .succeeded
            record.finishedAt = recorder.time
            try BatonJSON.encode(record, pretty: true).write(to: URL(fileURLWithPath: layout.deployment(record.id)))
            #expect(try store.loadRecord(record.id) == record)
        }
    }
}

/// Which file a path names, and when it was last written.
struct FileIdentity: Equatable {
    let inode: UInt64
    let modified: Int
    let modifiedNanoseconds: Int

    init(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw TestSupportError("stat \(path) failed") }
        inode = UInt64(st.st_ino)
        modified = Int(st.st_mtim.tv_sec)
        modifiedNanoseconds = Int(st.st_mtim.tv_nsec)
    }
}
