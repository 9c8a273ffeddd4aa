import BatonCLISupport
import BatonProtocol
import Foundation

extension Output {
    /// One JSON object on one line (the `--json` output of the commands that list things).
    static func json(_ value: some Encodable) {
        line(String(decoding: (try? BatonJSON.encode(value)) ?? Data("{}".utf8), as: UTF8.self))
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
