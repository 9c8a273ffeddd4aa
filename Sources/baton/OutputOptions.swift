import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct OutputOptions: ParsableArguments {
    @Flag(help: "Write newline-delimited JSON events and a final summary object.") var json = false
    @Flag(help: "One line per event even on a terminal (no live table).") var plain = false
    @Flag(help: "One line per host per phase change (and every error), not per event, when not drawing a table.") var brief = false

    func renderer(hosts: [String]) -> any ProgressRenderer {
        let write: @Sendable (String) -> Void = { Output.write($0) }
        if json { return JSONRenderer(write: write) }
        let isTTY = isatty(STDOUT_FILENO) == 1
        let palette = Palette.forTerminal(isTTY: isTTY)
        if isTTY, !plain {
            var size = winsize()
            let columns = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 120
            return TableRenderer(hosts: hosts, palette: palette, width: columns, write: write)
        }
        return LineRenderer(palette: palette, brief: brief, write: write)
    }
}
