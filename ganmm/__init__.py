"""GANMM Studio: clustering with a mixture of GANs (Yu & Zhou, IJCAI 2018),
next to a Gaussian mixture fitted by EM and k-means.

The library knows no screen: nothing here imports Streamlit except ``ganmm.ui``.
"""

__version__ = "0.1.0"
