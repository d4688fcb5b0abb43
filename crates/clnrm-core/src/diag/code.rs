//! Stable diagnostic codes: one per kind of problem, documented in the README.

use std::fmt;

macro_rules! codes {
    ($($name:ident = $num:literal, $sev:literal, $doc:literal;)*) => {
        /// The identifier of a kind of problem (`E0102`, `W0001`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(#[doc = $doc] $name,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The printed form, such as `E0102`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => concat!($sev, $num),)* }
            }

            /// One line on what the code means.
            pub fn describe(self) -> &'static str {
                match self { $(Code::$name => $doc,)* }
            }
        }
    };
}

codes! {
    Io = "0001", "E", "the file cannot be read (missing, a directory, not a regular file, unreadable)";
    NotUtf8 = "0002", "E", "the file is not valid UTF-8";
    EmptyFile = "0003", "E", "the file is empty";
    TooLarge = "0004", "E", "the file is larger than clnrm accepts";
    NotATestFile = "0005", "E", "the paths named on the command line hold no test definition";
    Internal = "0006", "E", "clnrm itself failed on the file (a bug)";
    TomlSyntax = "0010", "E", "the TOML does not parse";
    TemplateSyntax = "0020", "E", "the Tera template does not parse";
    TemplateRender = "0021", "E", "the Tera template fails while rendering (undefined variable, failing function)";
    TemplateNotFound = "0022", "E", "an imported, included or extended template does not exist";
    BadVar = "0023", "E", "a `--var` or `CLNRM_VAR_*` assignment is malformed";
    MissingKey = "0101", "E", "a required table or key is missing";
    UndefinedService = "0102", "E", "a scenario or step names a service that is not defined";
    WrongType = "0103", "E", "a value has the wrong type";
    BadEnum = "0104", "E", "a value is not one of the allowed words";
    DuplicateScenario = "0105", "E", "two scenarios in one file have the same name";
    DuplicatePort = "0106", "E", "a port is listed twice";
    RelativeVolumePath = "0107", "E", "a volume's container path is not absolute, or its host path is empty";
    BadTimestamp = "0108", "E", "a timestamp is not RFC 3339";
    BadRegex = "0109", "E", "a regular expression does not compile";
    BadGlob = "0110", "E", "a glob does not compile (no longer given: span-name patterns always compile)";
    UnbalancedQuotes = "0111", "E", "a `run` command has an unbalanced quote or trailing backslash";
    BadBounds = "0112", "E", "a lower bound is above its upper bound";
    OrderCycle = "0113", "E", "ordering constraints form a cycle";
    OrderContradictsWindow = "0114", "E", "an ordering constraint contradicts a window";
    NoScenario = "0115", "E", "the file defines no scenario";
    EmptyCommand = "0116", "E", "a command list is empty";
    OutOfRange = "0117", "E", "a number is outside its allowed range";
    NothingToRun = "0118", "E", "a scenario has neither `run` nor `steps`";
    AmbiguousService = "0119", "E", "a step or scenario does not say which service to run in";
    BadValue = "0120", "E", "a value is malformed (URL, artifact, pair, allowed host)";
    DependencyCycle = "0121", "E", "services' `depends_on` form a cycle";
    UnknownCapture = "0122", "E", "a `${name}` that no earlier step of the scenario captures";
    Conflict = "0123", "E", "two keys that cannot go together (a service's `image` and `build`)";
    BadBuild = "0124", "E", "a build's context, Dockerfile, target or `.dockerignore` is wrong";
    UnknownKey = "0001", "W", "a key is not part of the format (probably a typo)";
    Legacy = "0002", "W", "the file uses the legacy format";
    UnknownWord = "0003", "W", "a value is not one clnrm knows and will be ignored";
    RunAndSteps = "0005", "W", "a scenario has both `run` and `steps` (`run` runs first)";
    DangerousMount = "0004", "W", "a bind mount hands the container the engine socket, a system directory or a parent of the project";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
        }
    }
}
