import ArgumentParser
import BatonController
import BatonProtocol

// Typed flag values: a value that does not parse is refused by the argument parser with
// the flag's name and expected shape, before any command code runs.

extension BatonDuration: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { description }
}

extension HostCount: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public var defaultValueDescription: String { description }
}
