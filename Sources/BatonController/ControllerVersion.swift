/// The controller's version, printed by `baton --version` and recorded in history.
public enum ControllerVersion {
    public static let current = "0.1.0"
}
