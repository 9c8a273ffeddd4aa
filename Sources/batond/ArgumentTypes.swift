import ArgumentParser
import Logging

/// `--log-level` is parsed (and its choices listed in `--help`) by the argument parser.
extension Logger.Level: @retroactive ExpressibleByArgument {}
