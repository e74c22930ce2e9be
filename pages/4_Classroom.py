"""Classroom: GMM-EM, GANMM and GANMM-EM stepped side by side on one 2-D set."""

from __future__ import annotations

import streamlit as st

from ganmm.errors import GanmmError
from ganmm.ui import classroom, common

common.set_up_page("Classroom")
teacher = st.session_state.get("classroom-teacher", False)
if teacher:
    st.markdown(classroom.TEACHER_CSS, unsafe_allow_html=True)  # a fixed style sheet, no user text
else:
    st.title("Classroom")
    st.markdown(
        "Three models on the same points, the same K and the same seed, one EM iteration per "
        "**Step**. A **Gaussian mixture** can only draw ellipses. A **mixture of GANs** (GANMM) "
        "lets each GAN learn any shape, and a classifier trained on the GANs' own samples "
        "decides which GAN each point belongs to; each part also *borrows* the σ_t points of the "
        "others it finds most like its own (ε-EM), so points near a boundary can still change "
        "sides early on. **GANMM-EM** is plain hard EM with the critics deciding: a critic's "
        "score says how real a point looks to its GAN, not how likely the GAN is to draw it, "
        "so large parts of the data can swing between clusters from one iteration to the next.")

settings = st.session_state.setdefault(
    "classroom-settings", {"dataset": "moons", "k": None, "seed": 0, "init": "kmeans"})
names = [*classroom.TWO_D_SETS, *classroom.PROJECTED_SETS]
inits = {"kmeans": "k-means", "random": "random"}  # short (longer labels were cut in the box); the help says more
if not teacher:
    # The widgets hold their values while shown; teacher mode hides them (and Streamlit
    # then forgets them), so the settings dict keeps them and puts them back.
    for widget, value in (("cls-dataset", settings["dataset"]), ("cls-seed", settings["seed"]),
                          ("cls-init", settings["init"])):
        st.session_state.setdefault(widget, value)
    with st.container(border=True):
        c = st.columns([2, 1, 1, 1, 1])
        settings["dataset"] = c[0].selectbox(
            "Dataset", names, format_func=classroom.dataset_label, key="cls-dataset",
            help="The 2-D sets as they are; digits and mnist5k through their 2-D UMAP picture")
        try:
            ds = common.load_dataset(settings["dataset"])
        except GanmmError as exc:
            st.error(str(exc))
            st.stop()
        natural = ds.n_classes or 2
        if settings.get("k_for") != settings["dataset"]:  # a new dataset starts at its natural K
            settings["k"], settings["k_for"] = natural, settings["dataset"]
            st.session_state["cls-k"] = natural
        st.session_state.setdefault("cls-k", settings["k"])
        settings["k"] = int(c[1].number_input("Clusters K", 2, 10, key="cls-k",
                                              help=f"{settings['dataset']} has {natural} classes"))
        settings["seed"] = int(c[2].number_input("Seed", 0, 2**31 - 1, key="cls-seed"))
        settings["init"] = c[3].selectbox("Initial split", list(inits), key="cls-init", format_func=inits.get,
                                          help="k-means: a k-means split; random: equal random parts, "
                                               "as in the paper (GMM: random responsibilities)")
        c[4].write("")
        if c[4].button("Teacher mode", key="cls-teacher", help="Hide the settings, enlarge the "
                       "plots, high-contrast colours for a projector"):
            st.session_state["classroom-teacher"] = True
            st.rerun()

found = classroom.lesson_data(settings["dataset"])
if found.status == "pending":
    classroom.wait_for_picture(settings["dataset"])
    st.stop()
if found.status == "failed":
    st.error(found.message)
    st.stop()

key = classroom.LessonKey(settings["dataset"], int(settings["k"] or 2), int(settings["seed"]),
                          settings["init"])
try:
    runner = classroom.runner_for(key, found.X, found.y)
except GanmmError as exc:
    st.error(str(exc))
    st.stop()
classroom.view(runner, teacher=teacher)
