//! A router builder that remembers the (method, path) pairs it serves, so the
//! HTTP contract in `openapi/openapi.yaml` can be checked against the code
//! without starting the application or building its state.

use std::collections::BTreeMap;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};

/// Routes added one method at a time; turned into an axum [`Router`] at the end.
pub struct RouteTable<S> {
    paths: BTreeMap<String, (Vec<Method>, MethodRouter<S>)>,
}

impl<S> Default for RouteTable<S> {
    fn default() -> Self {
        Self {
            paths: BTreeMap::new(),
        }
    }
}

macro_rules! method {
    ($name:ident, $method:ident) => {
        #[doc = concat!("Serves `", stringify!($method), " path` with `handler`.")]
        pub fn $name<H, T>(self, path: &str, handler: H) -> Self
        where
            H: Handler<T, S>,
            T: 'static,
        {
            self.add(path, Method::$method, routing::$name(handler))
        }
    };
}

impl<S> RouteTable<S>
where
    S: Clone + Send + Sync + 'static,
{
    pub fn new() -> Self {
        Self::default()
    }

    method!(get, GET);
    method!(post, POST);
    method!(put, PUT);
    method!(patch, PATCH);
    method!(delete, DELETE);

    fn add(mut self, path: &str, method: Method, method_router: MethodRouter<S>) -> Self {
        match self.paths.remove(path) {
            Some((mut methods, existing)) => {
                // `merge` panics when both serve the same method: a programming error
                // caught by the first test that builds the router.
                methods.push(method);
                self.paths
                    .insert(path.to_owned(), (methods, existing.merge(method_router)));
            }
            None => {
                self.paths
                    .insert(path.to_owned(), (vec![method], method_router));
            }
        }
        self
    }

    /// Adds every route of `other` under `prefix` (e.g. `/ra`).
    pub fn nest(mut self, prefix: &str, other: RouteTable<S>) -> Self {
        let prefix = prefix.trim_end_matches('/');
        for (path, (methods, method_router)) in other.paths {
            let full = format!("{prefix}{path}");
            match self.paths.remove(&full) {
                Some((mut existing_methods, existing)) => {
                    existing_methods.extend(methods);
                    self.paths
                        .insert(full, (existing_methods, existing.merge(method_router)));
                }
                None => {
                    self.paths.insert(full, (methods, method_router));
                }
            }
        }
        self
    }

    /// Every (METHOD, path) served, sorted. `GET` implies `HEAD` in axum; only `GET` is listed.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut routes: Vec<(String, String)> = self
            .paths
            .iter()
            .flat_map(|(path, (methods, _))| {
                methods
                    .iter()
                    .map(move |method| (method.as_str().to_owned(), path.clone()))
            })
            .collect();
        routes.sort();
        routes
    }

    pub fn into_router(self) -> Router<S> {
        self.paths
            .into_iter()
            .fold(Router::new(), |router, (path, (_, method_router))| {
                router.route(&path, method_router)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok() -> &'static str {
        "ok"
    }

    #[test]
    fn every_method_and_path_is_listed() {
        let table = RouteTable::<()>::new()
            .get("/a", ok)
            .post("/a", ok)
            .delete("/b/{id}", ok)
            .nest("/admin/", RouteTable::new().put("/c", ok));
        let expected = [
            ("DELETE", "/b/{id}"),
            ("GET", "/a"),
            ("POST", "/a"),
            ("PUT", "/admin/c"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned()));
        assert_eq!(table.list(), expected);
        let _router: Router = table.into_router();
    }
}
