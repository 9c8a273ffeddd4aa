extension RolloutStrategy {
    /// The rules a strategy must keep to be able to deploy anything; flags and stored
    /// strategies (a resumed rollout's) are checked by the same ones. Messages name the
    /// command-line flag, which is how operators set each field.
    public func validate() throws(ControllerError) {
        func refuse(_ message: String) -> ControllerError { ControllerError(.invalidStrategy, message) }
        guard canary >= 0 else { throw refuse("--canary must be 0 or more") }
        if pauseAfterCanary, canary == 0 { throw refuse("--pause-after-canary needs --canary N") }
        if let batch, batch.resolve(total: 100) == 0 { throw refuse("--batch must be at least one host") }
        if let parallel, parallel < 1 { throw refuse("--parallel must be at least 1") }
        if let maxUnavailable, maxUnavailable.resolve(total: 100) == 0 {
            throw refuse("--max-unavailable must allow at least one host")
        }
        if let uploadParallel, uploadParallel < 1 { throw refuse("--upload-parallel must be at least 1") }
    }
}
