import BatonProtocol

extension HealthChecker {
    /// One measurement of a `prometheus` check, counted in the stage's tally. In
    /// `checking` (and after a rollback) it passes once `count` measurements in a row were
    /// successful; in `baking` every successful one passes. A failed, inconclusive or
    /// erroring measurement does not pass, but only one that passes a limit ends the
    /// stage (its measurement carries the code): see `isTolerated`.
    func measure(_ check: MetricCheck, index: Int, _ context: CheckContext) async
        -> (passed: Bool, detail: String, measurement: MetricMeasurement)
    {
        let tally = context.tally ?? MetricTally()
        let (verdict, value, noData, said) = await query(check, context)
        var (measurement, inARow) = tally.record(verdict, noData: noData, value: value, check: check, index: index)
        measurement.query = check.expandedQuery(host: context.host, release: context.release)
        let passed: Bool
        defer { tally.setPassed(index: index, passed) }
        var detail = said
        switch verdict {
        case .successful:
            let needed = context.stage == "baking" ? 1 : check.effectiveCount
            passed = inARow >= needed
            if needed > 1 { detail += " (\(min(inARow, needed)) of \(needed) in a row)" }
        case .failed:
            passed = false
            detail += " (failures \(measurement.failures), limit \(check.effectiveFailureLimit))"
        case .inconclusive:
            passed = false
            detail += " (inconclusive \(measurement.inconclusive), limit \(check.effectiveInconclusiveLimit))"
        case .error:
            passed = false
            detail += " (errors in a row \(measurement.consecutiveErrors), limit \(check.effectiveConsecutiveErrorLimit))"
        }
        return (passed, detail, measurement)
    }

    /// Asks and judges: the verdict, the value judged, whether the answer was empty, and
    /// the words for the record.
    private func query(_ check: MetricCheck, _ context: CheckContext) async
        -> (MetricMeasurement.Verdict, Double?, Bool, String)
    {
        guard let query = check.expandedQuery(host: context.host, release: context.release) else {
            return (.error, nil, false, "error: the host or release name cannot be put into PromQL")
        }
        switch await PrometheusQuery(probe: probe).run(server: check.server, query: query, timeout: context.timeout) {
        case .error(let reason):
            return (.error, nil, false, "error: \(reason)")
        case .values(let values):
            let present = values.filter { !$0.isNaN }
            guard !present.isEmpty else {
                return (.failed, nil, true, values.isEmpty ? "no data: the query returned nothing: failed" : "no data: the query returned NaN: failed")
            }
            // Several series: the worst one decides.
            let judged = present.map { ($0, check.judge($0)) }
            let order: [MetricMeasurement.Verdict: Int] = [.successful: 0, .inconclusive: 1, .failed: 2]
            let rank: (MetricMeasurement.Verdict) -> Int = { order[$0] ?? 3 }
            let worst = judged.max { rank($0.1) < rank($1.1) }!
            let shown = MetricMeasurement.format(worst.0)
            let series = values.count > 1 ? " (worst of \(values.count) series)" : ""
            switch worst.1 {
            case .successful: return (.successful, worst.0, false, "value \(shown)\(series) within \(check.bounds): successful")
            case .inconclusive:
                return (.inconclusive, worst.0, false, "value \(shown)\(series) outside \(check.bounds) short of the failure thresholds: inconclusive")
            default: return (.failed, worst.0, false, "value \(shown)\(series) outside \(check.bounds): failed")
            }
        }
    }
}

extension HealthAttempt {
    /// A metric measurement that did not pass but stays within its check's limits: the
    /// stage goes on (Argo's failure, inconclusive and error limits).
    var isTolerated: Bool { !passed && measurement != nil && measurement?.code == nil }

    /// A metric measurement that passed a limit: the stage ends now.
    var endsStage: Bool { measurement?.code != nil }

    /// Measurements of one check in one stage that are also events; later ones are kept
    /// in the record's health attempts only (its first and latest), so a day-long bake
    /// measured every second does not grow the record without bound.
    static let measurementEvents = 200

    /// The deployment event of a metric measurement: `metric (checking) prometheus …:
    /// value 1 outside max 0.05: failed (failures 1, limit 0)`; nil for other checks, and
    /// past the first `measurementEvents` of a stage unless it ends the stage.
    var measurementEvent: String? {
        guard let measurement, measurement.number <= Self.measurementEvents || measurement.code != nil else { return nil }
        let more = measurement.number == Self.measurementEvents && measurement.code == nil
            ? " (later measurements of this stage are in the record's health attempts only)" : ""
        return "metric (\(stage)) \(check): \(detail)\(more)"
    }
}

extension DeploymentRecord {
    /// When a metric check ended `stage`: the error to end the deployment with, under the
    /// step's code (`health_check_failed`, `bake_failed`) and reported as the metric's
    /// (`metric_check_failed`, `metric_no_data`, `metric_check_errors`,
    /// `metric_check_inconclusive`).
    func metricFailure(stage: String) -> ((AgentError.Code) -> ErrorInfo)? {
        guard let ending = healthAttempts.last(where: { $0.stage == stage && $0.endsStage }),
            let code = ending.measurement?.code
        else { return nil }
        return { step in AgentError(step, "\(ending.check): \(ending.detail)", detailCode: code).info }
    }
}
