//! `clnrm build`: the images the selected scenarios build from source, made as a run
//! would make them (`pipeline::build`), one line each; exit 1 when one could not be
//! built.

use super::{lazy_engine, print_prepared, runtime};
use crate::cli::BuildArgs;
use crate::exit;
use clnrm_core::config::RunFlags;
use clnrm_core::pipeline;

/// Runs the command.
pub fn run(args: &BuildArgs) -> i32 {
    let prepared = super::prepare(&args.paths, &args.vars);
    if let Err(code) = print_prepared(&prepared, "nothing was built") {
        return code;
    }
    let flags = RunFlags {
        workers: args.workers,
        filter: args.filter.clone(),
        tags: args.tags.tags.clone(),
        skip_tags: args.tags.skip_tags.clone(),
        ..RunFlags::default()
    };
    let config = match super::run::resolve(&flags, &prepared) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = match lazy_engine(&prepared.project.config.executor) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let done = rt.block_on(pipeline::build(&prepared, &config, engine));
    rt.shutdown_background();
    let (done, warnings) = match done {
        Ok(x) => x,
        Err(e) => return super::run::pipeline_error(&e),
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if done.is_empty() {
        println!("no selected scenario builds an image from source");
        return exit::SUCCESS;
    }
    let mut code = exit::SUCCESS;
    for d in &done {
        match &d.outcome {
            Ok(true) => println!(
                "built      {} (service {}) in {:.1}s",
                d.tag,
                d.service,
                d.duration.as_secs_f64()
            ),
            Ok(false) => println!("up to date {} (service {})", d.tag, d.service),
            Err(e) => {
                code = exit::TEST_FAILURE;
                eprintln!("error: {}", e.message);
                for l in e.build.iter().flat_map(|b| b.log_tail.lines()) {
                    eprintln!("    | {l}");
                }
            }
        }
    }
    code
}
